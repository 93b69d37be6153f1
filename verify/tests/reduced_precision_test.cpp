// The 16-bit dtypes of attention plugins: rounding to bfloat16 and float16 (the harness's, and the
// plugin host's bit conversions, which must agree), the accuracy criterion's constants, and
// LibTorch's reference in those dtypes.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "plugin_host/reduced_float.hpp"
#include "verify/reduced_precision.hpp"
#include "verify/tolerance.hpp"

namespace ped::verify {
namespace {

TEST(ReducedPrecision, RoundsToNearestEven) {
  const double u7 = std::ldexp(1.0, -7);  // bfloat16's spacing at 1
  EXPECT_EQ(rounded_to_reduced(1 + u7 / 2, Dtype::bf16), 1.0);            // tie: to the even 1
  EXPECT_EQ(rounded_to_reduced(1 + 3 * u7 / 2, Dtype::bf16), 1 + 2 * u7);  // tie: to the even 1 + 2^-6
  EXPECT_EQ(rounded_to_reduced(1 + u7 / 2 + 1e-12, Dtype::bf16), 1 + u7);  // above the tie
  EXPECT_EQ(rounded_to_reduced(-3.14159, Dtype::bf16), -3.140625);
  EXPECT_EQ(rounded_to_reduced(std::ldexp(1.0, -133), Dtype::bf16), std::ldexp(1.0, -133));  // smallest subnormal
  EXPECT_EQ(rounded_to_reduced(3.3895313892515355e38, Dtype::bf16), 3.3895313892515355e38);  // largest finite
  EXPECT_TRUE(std::isinf(rounded_to_reduced(3.4e38, Dtype::bf16)));

  EXPECT_EQ(rounded_to_reduced(65504.0, Dtype::f16), 65504.0);
  EXPECT_EQ(rounded_to_reduced(65519.0, Dtype::f16), 65504.0);
  EXPECT_EQ(rounded_to_reduced(-65520.0, Dtype::f16), -std::numeric_limits<double>::infinity());  // tie to "even" inf
  EXPECT_EQ(rounded_to_reduced(std::ldexp(1.0, -25), Dtype::f16), 0.0);  // half the smallest subnormal: to 0
  EXPECT_EQ(rounded_to_reduced(3 * std::ldexp(1.0, -25), Dtype::f16), std::ldexp(1.0, -23));
  EXPECT_EQ(rounded_to_reduced(0.1, Dtype::f16), 0.0999755859375);
  EXPECT_TRUE(std::isnan(rounded_to_reduced(std::nan(""), Dtype::f16)));
  EXPECT_THROW(rounded_to_reduced(1.0, Dtype::f32), std::logic_error);
  EXPECT_EQ(reduced_epsilon(Dtype::bf16), std::ldexp(1.0, -7));
  EXPECT_EQ(reduced_epsilon(Dtype::f16), std::ldexp(1.0, -10));
}

// The plugin host converts float buffers to 16-bit patterns by bit manipulation; the harness rounds
// its inputs arithmetically. Both must give the same value for every float (else the plugin would
// see other inputs than the truth and LibTorch).
TEST(ReducedPrecision, PluginHostConversionsAgreeWithTheHarnessRounding) {
  std::mt19937 gen(7);
  std::uniform_int_distribution<std::uint32_t> bits;
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    const float f = plugin::float_of_bits(bits(gen));
    if (std::isnan(f)) continue;
    ++checked;
    const double bf = rounded_to_reduced(f, Dtype::bf16), hf = rounded_to_reduced(f, Dtype::f16);
    ASSERT_EQ(static_cast<double>(plugin::to_float(plugin::to_bfloat16(f))), bf) << f;
    ASSERT_EQ(static_cast<double>(plugin::to_float(plugin::to_float16(f))), hf) << f;
  }
  // and around float16's range and subnormals, where random bit patterns rarely land
  for (double x = -70000; x <= 70000; x += 0.37) {
    const auto f = static_cast<float>(x * 1e-5);
    ASSERT_EQ(static_cast<double>(plugin::to_float(plugin::to_float16(f))), rounded_to_reduced(f, Dtype::f16)) << f;
    const auto g = static_cast<float>(x);
    ASSERT_EQ(static_cast<double>(plugin::to_float(plugin::to_float16(g))), rounded_to_reduced(g, Dtype::f16)) << g;
  }
  EXPECT_GT(checked, 190000);
  EXPECT_TRUE(std::isnan(plugin::to_float(plugin::to_bfloat16(std::nanf("")))));
  EXPECT_TRUE(std::isnan(plugin::to_float(plugin::to_float16(std::nanf("")))));
}

TEST(ReducedPrecision, CriterionConstantsArePinned) {
  EXPECT_EQ(kAccuracyCriterionFactor, 2);
  EXPECT_EQ(reduced_precision_floor(Dtype::bf16), std::ldexp(1.0, -7));  // eps(bfloat16)
  EXPECT_EQ(reduced_precision_floor(Dtype::f16), std::ldexp(1.0, -10));  // eps(float16)
  EXPECT_EQ(accuracy_floor(0, std::ldexp(1.0, -23)), std::ldexp(1.0, -22));  // 2 eps(float)
  EXPECT_EQ(accuracy_floor(0.5, std::ldexp(1.0, -10)), 1.0);                  // 2 x the rounding term
  EXPECT_EQ(accuracy_bound(0.01, 0.002), 0.022);
}

// LibTorch's attention in bfloat16 and (emulated) float16 is off the float64 truth by the dtype's
// rounding, not more and not exactly zero.
TEST(ReducedPrecision, LibTorchReferenceErrorIsOfTheDtypesOrder) {
  const AttentionShape s{.batch = 1, .heads = 2, .seq_q = 9, .seq_k = 13, .head_dim = 8};
  const Mask all = Mask::none();
  Rng rng(3);
  const Tensors raw = {rng.normal(8, 18), rng.normal(8, 26), rng.normal(8, 26)};
  const Tensors d_raw = {rng.normal(8, 18)};
  const double scale = 1 / std::sqrt(8.0);
  for (Dtype dt : {Dtype::bf16, Dtype::f16}) {
    Tensors in = raw, dout = d_raw;
    for (arma::mat& m : in) m = rounded_to_reduced(m, dt);
    dout[0] = rounded_to_reduced(dout[0], dt);
    const ReducedReference torch = sdpa_reduced_reference(s, all, scale, dt, in, dout, true);
    ASSERT_EQ(torch.outputs.size(), 2u);
    ASSERT_EQ(torch.gradients.size(), 3u);
    EXPECT_TRUE(sdpa_reduced_reference(s, all, scale, dt, in, dout, false).gradients.empty());  // forward only
    // every value LibTorch returns is one of the dtype's
    for (const arma::mat& m : torch.outputs) {
      EXPECT_TRUE(arma::approx_equal(m, rounded_to_reduced(m, dt), "absdiff", 0.0)) << to_string(dt);
    }
    for (std::size_t k = 0; k < 3; ++k) EXPECT_EQ(torch.gradients[k].n_elem, in[k].n_elem);
    // against the truth, softmax(s Q K^T) V in double on the same rounded inputs
    const double eps = reduced_epsilon(dt);
    arma::mat out_truth(8, 18);
    for (arma::uword x = 0; x < 2; ++x) {
      for (arma::uword i = 0; i < 9; ++i) {
        arma::vec sc(13);
        for (arma::uword j = 0; j < 13; ++j) sc(j) = scale * arma::dot(in[0].col(x * 9 + i), in[1].col(x * 13 + j));
        const arma::vec p = arma::exp(sc - sc.max()) / arma::accu(arma::exp(sc - sc.max()));
        out_truth.col(x * 9 + i) = in[2].cols(x * 13, x * 13 + 12) * p;
      }
    }
    const double err = compare_tensors(torch.outputs[0], out_truth).norm_rel_err;
    EXPECT_GT(err, 0) << to_string(dt);
    EXPECT_LT(err, 4 * eps) << to_string(dt);
  }
}

}  // namespace
}  // namespace ped::verify
