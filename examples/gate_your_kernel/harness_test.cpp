// The C++ side of the gate: the user's in-process kernel under every check `verify` runs on a
// built-in (one GoogleTest case per op x dtype x reference x mask), and gradcheck of a user layer.
#include <gtest/gtest.h>

#include <verify/harness.hpp>

#include "my_attention.hpp"

// One line: MyAttention.sdpa_float_libtorch_causal, MyAttention.sdpa_double_finite_difference_bigbird, ...
PED_ATTENTION_TESTS(MyAttention, my::my_attention_impl());

namespace {

// A user layer: y = a * tanh(W x), inputs x (3 x 4 tokens), W (2 x 3), a (1 x 1).
//   dW = (a dy o (1 - t^2)) x^T, dx = W^T (a dy o (1 - t^2)), da = sum(dy o t), t = tanh(W x)
arma::mat forward(const std::vector<arma::mat>& in) { return in[2](0, 0) * arma::tanh(in[1] * in[0]); }

std::vector<arma::mat> backward(const std::vector<arma::mat>& in, const arma::mat& dy) {
  const arma::mat t = arma::tanh(in[1] * in[0]);
  const arma::mat g = in[2](0, 0) * dy % (1 - arma::square(t));
  return {in[1].t() * g, g * in[0].t(), arma::mat(1, 1, arma::fill::value(arma::accu(dy % t)))};
}

std::vector<ped::verify::LayerInput> inputs() {
  arma::arma_rng::set_seed(7);
  return {{"x", arma::randn(3, 4)}, {"W", arma::randn(2, 3)}, {"a", arma::mat(1, 1, arma::fill::value(1.5))}};
}

TEST(MyLayer, GradcheckPasses) {
  const ped::verify::Verdict v = ped::verify::gradcheck(inputs(), forward, backward, {.name = "my_layer"});
  EXPECT_TRUE(v.passed()) << v.failure_report();
  EXPECT_EQ(v.rows.size(), 3u);  // dx, dW, da
}

// The check has teeth: a backward that forgets the factor a in dW is caught, and dW is named.
TEST(MyLayer, GradcheckCatchesAWrongBackward) {
  const auto wrong = [](const std::vector<arma::mat>& in, const arma::mat& dy) {
    std::vector<arma::mat> g = backward(in, dy);
    g[1] /= in[2](0, 0);
    return g;
  };
  const ped::verify::Verdict v = ped::verify::gradcheck(inputs(), forward, wrong, {.name = "my_layer_wrong"});
  EXPECT_FALSE(v.passed());
  EXPECT_NE(v.failure_report().find(": dW norm_rel_err"), std::string::npos) << v.failure_report();
  EXPECT_EQ(v.failures(), 1u) << v.failure_report();
}

}  // namespace
