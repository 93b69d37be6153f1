// The checker has teeth: deliberately wrong backwards must be flagged by both references.
#include <gtest/gtest.h>

#include "reference/attention.hpp"
#include "reference/layer_norm.hpp"
#include "reference/linear.hpp"
#include "reference/lora_linear.hpp"
#include "reference/token_embedding.hpp"
#include "verify/sweep.hpp"

namespace ped::verify {
namespace {

// Runs both references in both dtypes and expects `quantity` to fail in every one of them.
void expect_flagged(const Problem& p, const std::string& quantity) {
  for (Dtype dt : {Dtype::f32, Dtype::f64}) {
    for (Reference ref : {Reference::libtorch, Reference::finite_difference}) {
      const std::vector<CheckRow> rows = check_problem(p, {dt}, {ref});
      bool found = false;
      for (const CheckRow& r : rows) {
        if (r.quantity != quantity) continue;
        found = true;
        EXPECT_FALSE(r.passed) << p.op << " " << to_string(dt) << " vs " << to_string(ref) << ": wrong " << quantity
                               << " passed with norm_rel_err=" << r.metrics.norm_rel_err;
      }
      EXPECT_TRUE(found) << "no row for " << quantity;
    }
  }
}

TEST(Teeth, CorrectBackwardsPass) {
  // The same problems with the real backwards pass: the failures below come from the injected bugs.
  for (const char* op : {"layer_norm", "attention", "linear", "lora_linear", "token_embedding"}) {
    for (const CheckRow& r : check_problem(find_op_case(op).make({parse_dims("N=5,D=6,H=2,I=4,O=4,R=2,V=4")}, 3),
                                           {Dtype::f32, Dtype::f64},
                                           {Reference::libtorch, Reference::finite_difference})) {
      EXPECT_TRUE(r.passed) << op << " " << r.quantity << " " << r.dtype << " " << r.reference;
    }
  }
}

TEST(Teeth, LayerNormBackwardWithoutMeanTerm) {
  Problem p = find_op_case("layer_norm").make({parse_dims("N=3,D=5")}, 3);
  p.backward = erase_backward([]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T> {
    ref::LayerNormCache<T> c;
    ref::layer_norm_forward(in[0], as_col(in[1]), as_col(in[2]), T(1e-5), c);
    const arma::Mat<T> g = dout[0].each_col() % as_col(in[1]);
    arma::Mat<T> dx = g - c.xhat.each_row() % arma::mean(g % c.xhat, 0);  // "- mean(g)" left out
    dx.each_row() %= c.rstd;
    return {dx, arma::sum(dout[0] % c.xhat, 1), arma::sum(dout[0], 1)};
  });
  expect_flagged(p, "dx");
}

TEST(Teeth, AttentionBackwardWithoutScale) {
  Problem p = find_op_case("attention").make({parse_dims("N=5,D=6,H=2")}, 3);
  p.backward = erase_backward([]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T> {
    const ref::AttentionParams<T> prm{.wq = in[1], .wk = in[3], .wv = in[5], .wo = in[7],
                                      .bq = as_col(in[2]), .bk = as_col(in[4]), .bv = as_col(in[6]), .bo = as_col(in[8])};
    ref::AttentionCache<T> c;
    ref::attention_forward(in[0], prm, ref::AttentionConfig<T>{.heads = 2}, c);
    c.scale = T(1);  // backward forgets the 1/sqrt(dh) factor of dQ and dK
    ref::AttentionGrads<T> g = ref::attention_backward(dout[0], prm, c);
    return {g.dx, g.dp.wq, g.dp.bq, g.dp.wk, g.dp.bk, g.dp.wv, g.dp.bv, g.dp.wo, g.dp.bo};
  });
  expect_flagged(p, "dwq");
  expect_flagged(p, "dwk");
  expect_flagged(p, "dx");
}

TEST(Teeth, LinearTransposedWeightGradient) {
  // Square, so the wrong gradient has the right shape and only its values give it away.
  Problem p = find_op_case("linear").make({parse_dims("N=5,I=4,O=4")}, 3);
  p.backward = erase_backward([]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T> {
    ref::LinearGrads<T> g = ref::linear_backward(dout[0], in[0], in[1]);
    return {g.dx, arma::Mat<T>(g.dw.t()), g.db};
  });
  expect_flagged(p, "dw");

  // Not square: the wrong shape itself is the failure.
  Problem q = find_op_case("linear").make({parse_dims("N=5,I=4,O=3")}, 3);
  q.backward = p.backward;
  expect_flagged(q, "dw");
}

TEST(Teeth, LoraGradientWithoutScale) {
  Problem p = find_op_case("lora_linear").make({parse_dims("N=5,I=6,O=4,R=2")}, 3);
  p.backward = erase_backward([]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T> {
    const arma::Mat<T>& x = in[0];
    const arma::Mat<T> bt_dy = in[4].t() * dout[0];
    const T s = T(1.75);  // alpha / r of this problem: dx keeps it, dA and dB forget it
    return {in[1].t() * dout[0] + s * in[3].t() * bt_dy, bt_dy * x.t(), dout[0] * (in[3] * x).t()};
  });
  expect_flagged(p, "da");
  expect_flagged(p, "db");
}

TEST(Teeth, EmbeddingGradientOverwritesRepeatedIds) {
  Problem p = find_op_case("token_embedding").make({parse_dims("N=6,D=3,V=4")}, 3);
  // the ids the problem draws (the same seeded draw as token_embedding_case)
  Rng rng(3);
  ref::TokenIds ids = rng.integers(6, 0, 4);
  ids[1] = ids[0];
  p.backward = erase_backward([ids]<class T>(const Mats<T>&, const Mats<T>& dout) -> Mats<T> {
    arma::Mat<T> dw(dout[0].n_rows, 4, arma::fill::zeros);
    for (std::size_t n = 0; n < ids.size(); ++n) dw.col(ids[n]) = dout[0].col(n);  // = instead of +=
    return {dw};
  });
  expect_flagged(p, "dwte");
}

}  // namespace
}  // namespace ped::verify
