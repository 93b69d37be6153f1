// Edge cases: fully masked rows, huge scores, bitwise determinism across thread counts.
// B batch, H heads, Nq/Nk query/key tokens, d head dim.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "variants/tests/test_util.hpp"

namespace ped::test {
namespace {


template <class T>
class EdgeCases : public ::testing::Test {};
using Dtypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(EdgeCases, Dtypes);

// Causal with Nq = 7 > Nk = 4: queries 0..2 sit before every key (p = i - 3 < 0) and see nothing.
TYPED_TEST(EdgeCases, FullyMaskedRowsGiveZeroOutputMinusInfLseZeroGradients) {
  using T = TypeParam;
  const AttentionShape shape{.batch = 2, .heads = 1, .seq_q = 7, .seq_k = 4, .head_dim = 5};
  const Problem<T> p = make_problem<T>(shape, kSeed);
  for (const AttentionImpl* v : builtin_impls()) {
    for (const AttentionOptions& opt : {AttentionOptions{}, AttentionOptions{.tile_q = 2, .tile_k = 3, .block_size = 2}}) {
      SCOPED_TRACE(v->name);
      const Result<T> r = run<T>(*v, p, Mask::causal(), opt);
      for (const auto* x : {&r.out, &r.lse, &r.dq, &r.dk, &r.dv}) ASSERT_FALSE(has_nan_or_inf(*x));
      for (std::int64_t b = 0; b < 2; ++b) {
        for (std::int64_t i = 0; i < 7; ++i) {
          const T lse = r.lse[b * 7 + i];
          if (i < 3) {
            EXPECT_TRUE(std::isinf(lse) && lse < 0) << "row " << i;
            for (std::int64_t c = 0; c < 5; ++c) {
              EXPECT_EQ(r.out[(b * 7 + i) * 5 + c], T{0});
              if (v->has_backward<T>()) {
                EXPECT_EQ(r.dq[(b * 7 + i) * 5 + c], T{0});
              }
            }
          } else {
            EXPECT_TRUE(std::isfinite(lse)) << "row " << i;
          }
        }
      }
    }
  }
}

TYPED_TEST(EdgeCases, EverythingHiddenGivesZerosEverywhere) {
  using T = TypeParam;
  const AttentionShape shape{.batch = 1, .heads = 2, .seq_q = 10, .seq_k = 12, .head_dim = 3};
  const Problem<T> p = make_problem<T>(shape, kSeed);
  const Mask hidden = Mask::explicit_blocks(4, 4, 3, 3, std::vector<std::uint8_t>(9, 0));
  for (const AttentionImpl* v : builtin_impls()) {
    SCOPED_TRACE(v->name);
    const Result<T> r = run<T>(*v, p, hidden);
    for (T x : r.out) EXPECT_EQ(x, T{0});
    for (T x : r.lse) EXPECT_TRUE(std::isinf(x) && x < 0);
    for (const auto* g : {&r.dq, &r.dk, &r.dv}) {
      for (T x : *g) EXPECT_EQ(x, T{0});
    }
  }
}

// Scores of about +1e4 and -1e4: every key shares a component of +-100 with every query, on top of
// small integers, so S = +-1e4 + an integer in [-27, 27], exact in float and double. Without the
// max shift exp(1e4) overflows and exp(-1e4) underflows to an lse of -inf.
TYPED_TEST(EdgeCases, HugeScoresDoNotOverflow) {
  using T = TypeParam;
  const AttentionShape shape{.batch = 1, .heads = 1, .seq_q = 37, .seq_k = 41, .head_dim = 4};
  for (double sign : {1.0, -1.0}) {
    Problem<T> p = make_problem<T>(shape, kSeed);
    p.scale = 1;
    for (std::size_t e = 0; e < p.q.size(); ++e) p.q[e] = e % 4 == 0 ? T{100} : std::round(p.q[e] * 3);
    for (std::size_t e = 0; e < p.k.size(); ++e) p.k[e] = e % 4 == 0 ? static_cast<T>(100 * sign) : std::round(p.k[e] * 3);
    for (const Mask& mask : {Mask::none(), Mask::causal()}) {
      const Result<T> ref = run<T>(attention_impl("naive"), p, mask);
      for (T l : ref.lse) EXPECT_NEAR(static_cast<double>(l), sign * 1e4, 40.0);
      for (const AttentionImpl* v : builtin_impls()) {
        SCOPED_TRACE(v->name + " " + mask.name() + " sign " + std::to_string(sign));
        const Result<T> r = run<T>(*v, p, mask, AttentionOptions{.tile_q = 8, .tile_k = 8, .block_size = 8});
        for (const auto* x : {&r.out, &r.lse, &r.dq, &r.dk, &r.dv}) ASSERT_FALSE(has_nan_or_inf(*x));
        for (T l : r.lse) ASSERT_TRUE(std::isfinite(l));
        // Forward: same tolerance reasoning as the agreement tests (scores differ by integers, so
        // the softmax is well conditioned).
        const double tol = std::is_same_v<T, double> ? 1e-11 : 5e-5;
        EXPECT_LE(norm_rel_err(r.out, ref.out), tol);
        EXPECT_LE(norm_rel_err(r.lse, ref.lse), tol);
        // Backward: the row stats keep P's normalisation exact to a rounding whatever the scores'
        // size (an lse rounded to float carries ulp(1e4) / 2 = 4.9e-4 into P: the kernels that
        // kept lse were off by 2.5e-4 to 4.2e-4 here). What remains is dq's conditioning: every
        // key shares the component +-100, along which dq_i = 100 s sum_j dS_ij = 0 in exact
        // arithmetic, so dq carries ~100 eps |dS| of rounding against a norm of a few |dS|.
        // Measured worst: float 1.1e-5 (dq), 1.8e-7 (dk, dv); double 6.0e-14 (dq), 1.2e-15 (dk, dv).
        const double gtol = std::is_same_v<T, double> ? 2.5e-13 : 5e-5;
        if (!v->has_backward<T>()) continue;  // forward only (flash_decode)
        EXPECT_LE(norm_rel_err(r.dq, ref.dq), gtol);
        EXPECT_LE(norm_rel_err(r.dk, ref.dk), gtol);
        EXPECT_LE(norm_rel_err(r.dv, ref.dv), gtol);
      }
    }
  }
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// 1 and 2 threads give bitwise identical results. B H = 1, 2, 3 take the two-pass backward with
// 2 threads and the one-pass backward with 1 thread; B H = 6 takes the one-pass with both. Scores
// 40 times larger make most rows dominated by one key (inv_sum > 1/2), whose slices the tiled
// backward takes in two passes whatever the threads, with the dominant entries in exact form.
TYPED_TEST(EdgeCases, BitwiseIdenticalForOneAndTwoThreads) {
  using T = TypeParam;
  for (std::int64_t heads : {1, 2, 3, 6}) {
    const AttentionShape shape{.batch = 1, .heads = heads, .seq_q = 150, .seq_k = 140, .head_dim = 24};
    for (T factor : {T{1}, T{40}}) {
    Problem<T> p = make_problem<T>(shape, kSeed + static_cast<std::uint64_t>(heads));
    p.scale *= factor;
    for (const Mask& mask : {Mask::causal(), Mask::strided(6, false), Mask::none()}) {
      for (const AttentionImpl* v : builtin_impls()) {
        SCOPED_TRACE(v->name + " " + mask.name() + " heads=" + std::to_string(heads) +
                     " scale x" + std::to_string(factor));
        AttentionOptions one{.threads = 1, .tile_q = 32, .tile_k = 48, .block_size = 32};
        AttentionOptions two = one;
        two.threads = 2;
        const Result<T> a = run<T>(*v, p, mask, one);
        const Result<T> b = run<T>(*v, p, mask, two);
        EXPECT_TRUE(bitwise_equal(a.out, b.out));
        EXPECT_TRUE(bitwise_equal(a.lse, b.lse));
        EXPECT_TRUE(bitwise_equal(a.dq, b.dq));
        EXPECT_TRUE(bitwise_equal(a.dk, b.dk));
        EXPECT_TRUE(bitwise_equal(a.dv, b.dv));
        std::int64_t dominated = 0;
        for (const RowStats<T>& st : a.stats) dominated += st.inv_sum > T{0.5};
        if (factor == T{1}) {  // only the causal rows that see one or two keys
          EXPECT_LT(dominated, static_cast<std::int64_t>(a.stats.size()) / 10);
        } else {
          EXPECT_GT(dominated, static_cast<std::int64_t>(a.stats.size()) / 2);
        }
      }
    }
    }
  }
}

// flash without tiles in its options picks square tiles from the mask: 256 where the mask fills them
// (none), 64 for a window of 16 keys, which would leave most of a 256 x 256 tile hidden. The default
// call is bitwise the call with those tiles given.
TEST(FlashTiles, DefaultTilesFollowTheMask) {
  const AttentionShape shape{.batch = 1, .heads = 2, .seq_q = 300, .seq_k = 300, .head_dim = 16};
  const Problem<float> p = make_problem<float>(shape, kSeed + 11);
  const AttentionImpl& flash = *find_attention_impl("flash");
  const struct {
    Mask mask;
    std::int64_t side;
  } cases[] = {{Mask::none(), 256}, {Mask::sliding_window(16, 0), 64}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.mask.name());
    const Result<float> chosen = run<float>(flash, p, c.mask, AttentionOptions{.threads = 2});
    const Result<float> given = run<float>(flash, p, c.mask, AttentionOptions{.threads = 2, .tile_q = c.side, .tile_k = c.side});
    EXPECT_TRUE(bitwise_equal(chosen.out, given.out));
    EXPECT_TRUE(bitwise_equal(chosen.lse, given.lse));
    EXPECT_TRUE(bitwise_equal(chosen.dq, given.dq));
    EXPECT_TRUE(bitwise_equal(chosen.dk, given.dk));
    EXPECT_TRUE(bitwise_equal(chosen.dv, given.dv));
  }
}

}  // namespace
}  // namespace ped::test
