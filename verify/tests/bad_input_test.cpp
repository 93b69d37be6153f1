// Bad input to the reference layers: std::invalid_argument naming the function and the values.
#include <gtest/gtest.h>

#include <functional>

#include "reference/attention.hpp"
#include "reference/cross_entropy.hpp"
#include "reference/feed_forward.hpp"
#include "reference/gelu.hpp"
#include "reference/layer_norm.hpp"
#include "reference/linear.hpp"
#include "reference/lora_linear.hpp"
#include "reference/positional_embedding.hpp"
#include "reference/residual.hpp"
#include "reference/softmax.hpp"
#include "reference/token_embedding.hpp"

namespace ped::ref {
namespace {

// Expects std::invalid_argument whose message contains every one of `parts`.
void expect_invalid(const std::function<void()>& f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected std::invalid_argument mentioning " << *parts.begin();
  } catch (const std::invalid_argument& e) {
    for (const char* part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(BadInput, MismatchedShapes) {
  const arma::mat x(4, 3, arma::fill::ones), w(5, 6, arma::fill::ones);
  const arma::vec b(5, arma::fill::zeros);
  expect_invalid([&] { linear_forward(x, w, b); }, {"linear_forward", "(5 x 6)", "(4 x 3)"});
  expect_invalid([&] { linear_forward(x, arma::mat(5, 4, arma::fill::ones), arma::vec(3)); },
                 {"linear_forward", "b has 3 elements", "expected 5"});
  expect_invalid([&] { residual_forward(x, arma::mat(3, 4)); }, {"residual_forward", "(3 x 4)", "(4 x 3)"});
  LayerNormCache<double> c;
  expect_invalid([&] { layer_norm_forward(x, arma::vec(3), arma::vec(4), 1e-5, c); },
                 {"layer_norm_forward", "gamma has 3 elements", "expected 4"});
  expect_invalid([&] { gelu_backward(arma::mat(2, 2), x, GeluApprox::erf); }, {"gelu_backward", "(2 x 2)"});
  FeedForwardCache<float> fc;
  expect_invalid([&] { feed_forward_forward(arma::fmat(4, 3), {arma::fmat(8, 5), arma::fvec(8), arma::fmat(4, 8), arma::fvec(4)}, GeluApprox::tanh, fc); },
                 {"feed_forward_forward", "w1", "(8 x 5)"});
}

TEST(BadInput, EmptyInputs) {
  expect_invalid([] { softmax_rows_forward(arma::mat()); }, {"softmax_rows_forward", "empty", "(0 x 0)"});
  expect_invalid([] { gelu_forward(arma::fmat(0, 3), GeluApprox::tanh); }, {"gelu_forward", "empty"});
  expect_invalid([] { token_embedding_forward(arma::mat(3, 5, arma::fill::ones), TokenIds{}); },
                 {"token_embedding_forward", "ids is empty"});
  expect_invalid([] { positional_embedding_forward(arma::mat(3, 5, arma::fill::ones), 0); },
                 {"positional_embedding_forward", "n_tokens is 0"});
}

TEST(BadInput, TokenIdsOutsideTheVocabulary) {
  const arma::mat wte(3, 5, arma::fill::ones);
  expect_invalid([&] { token_embedding_forward(wte, TokenIds{1, 5}); },
                 {"token_embedding_forward", "ids[1] = 5", "[0, 5)"});
  expect_invalid([&] { token_embedding_forward(wte, TokenIds{-1}); }, {"token_embedding_forward", "ids[0] = -1"});
  expect_invalid([&] { token_embedding_backward(arma::mat(3, 1), TokenIds{7}, 5); },
                 {"token_embedding_backward", "ids[0] = 7"});
  CrossEntropyCache<double> c;
  expect_invalid([&] { cross_entropy_forward(arma::mat(4, 2, arma::fill::zeros), TokenIds{0, 4}, -100, c); },
                 {"cross_entropy_forward", "targets[1] = 4", "[0, 4)"});
  expect_invalid([&] { cross_entropy_forward(arma::mat(4, 2, arma::fill::zeros), TokenIds{0}, -100, c); },
                 {"cross_entropy_forward", "1 targets", "expected 2"});
  expect_invalid([] { positional_embedding_forward(arma::mat(3, 5, arma::fill::ones), 4, 2); },
                 {"positional_embedding_forward", "positions 2 .. 5", "length 5"});
}

TEST(BadInput, NonPositiveEps) {
  const arma::mat x(4, 3, arma::fill::randn);
  const arma::vec g(4, arma::fill::ones), b(4, arma::fill::zeros);
  LayerNormCache<double> c;
  for (double eps : {0.0, -1e-5, std::numeric_limits<double>::quiet_NaN()}) {
    expect_invalid([&] { layer_norm_forward(x, g, b, eps, c); }, {"layer_norm_forward", "eps = ", "eps > 0"});
  }
}

TEST(BadInput, LoraRank) {
  LoraLinearParams<double> p{.w0 = arma::mat(4, 6, arma::fill::ones), .b0 = arma::vec(4, arma::fill::zeros),
                             .a = arma::mat(0, 6), .b = arma::mat(4, 0), .alpha = 1.0};
  LoraLinearCache<double> c;
  const arma::mat x(6, 2, arma::fill::ones);
  expect_invalid([&] { lora_linear_forward(x, p, c); }, {"lora_linear_forward", "rank r = 0"});
  p.a = arma::mat(5, 6, arma::fill::ones);
  p.b = arma::mat(4, 5, arma::fill::ones);
  expect_invalid([&] { lora_linear_forward(x, p, c); }, {"lora_linear_forward", "rank r = 5", "min(O, I) = 4"});
}

TEST(BadInput, AttentionHeadsMustDivideWidth) {
  const arma::uword d = 6;
  AttentionParams<double> p;
  p.wq = p.wk = p.wv = p.wo = arma::mat(d, d, arma::fill::eye);
  p.bq = p.bk = p.bv = p.bo = arma::vec(d, arma::fill::zeros);
  AttentionCache<double> c;
  const arma::mat x(d, 3, arma::fill::randn);
  expect_invalid([&] { attention_forward(x, p, AttentionConfig<double>{.heads = 4}, c); },
                 {"attention_forward", "heads = 4", "D = 6"});
  expect_invalid([&] { attention_forward(x, p, AttentionConfig<double>{.heads = 0}, c); },
                 {"attention_forward", "heads = 0"});
  p.wk = arma::mat(d, d + 1);
  expect_invalid([&] { attention_forward(x, p, AttentionConfig<double>{.heads = 2}, c); },
                 {"attention_forward", "wk has shape (6 x 7)"});
}

TEST(CrossEntropy, AllTargetsIgnoredGivesZeroLossAndGradient) {
  CrossEntropyCache<double> c;
  const arma::mat z(3, 2, arma::fill::randn);
  EXPECT_EQ(cross_entropy_forward(z, TokenIds{-100, -100}, -100, c), 0.0);
  EXPECT_EQ(arma::accu(arma::abs(cross_entropy_backward(c))), 0.0);
}

TEST(Softmax, FullyMaskedRowIsZeroNotNan) {
  const double inf = std::numeric_limits<double>::infinity();
  const arma::mat s = {{-inf, -inf}, {0.0, -inf}};
  const arma::mat p = softmax_rows_forward(s);
  EXPECT_TRUE(p.is_finite());
  EXPECT_EQ(p(0, 0), 0.0);
  EXPECT_EQ(p(0, 1), 0.0);
  EXPECT_EQ(p(1, 0), 1.0);
  EXPECT_TRUE(softmax_rows_backward(arma::mat(2, 2, arma::fill::ones), p).is_finite());
}

}  // namespace
}  // namespace ped::ref
