// The score-level features (soft-cap, ALiBi, dropout, sinks) in the tiled kernels, flash and sparse
// (variants/tiled_attention.hpp), against a brute-force reference in double written from the formulas
// of variants/attention.hpp. B batch, H heads, Nq/Nk query/key tokens, d head dim.
// What the feature sweep over every built-in does not reach: both backward orders (one pass per
// (b, h) with B H >= 2 threads, two passes with B H = 1 on 2 threads) giving bitwise the same
// results, odd tiles and blocks, sparse masks whose blocks are partial, full and empty, every feature
// at once, and rows dominated by one key (the exact dS path of variants/kernels.hpp) under a sink, a
// soft-cap and dropout.
#include <gtest/gtest.h>

#include <pedestrian/attention_dropout.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "variants/attention.hpp"
#include "variants/registry.hpp"
#include "variants/tests/test_util.hpp"

namespace ped::test {
namespace {

// The features of one test call (pointers into its own vectors).
struct Features {
  double softcap = 0;
  std::vector<double> slopes;  // empty: no ALiBi
  double dropout_p = 0;
  std::uint64_t seed = 0;
  std::vector<double> sinks;  // empty: no sinks

  AttentionFeatures api(std::vector<double>& dsinks) const {
    AttentionFeatures f;
    f.softcap = softcap;
    f.alibi_slopes = slopes.empty() ? nullptr : slopes.data();
    f.dropout_p = dropout_p;
    f.dropout_seed = seed;
    f.sinks = sinks.empty() ? nullptr : sinks.data();
    f.dsinks = sinks.empty() ? nullptr : dsinks.data();
    return f;
  }
  std::string name() const {
    std::string s;
    if (softcap > 0) s += " softcap=" + std::to_string(softcap);
    if (!slopes.empty()) s += " alibi";
    if (dropout_p > 0) s += " dropout=" + std::to_string(dropout_p);
    if (!sinks.empty()) s += " sinks";
    return s.empty() ? " plain" : s;
  }
};

struct Reference {
  std::vector<double> out, lse, dq, dk, dv, dsinks;
};

// Forward and backward per (b, h), straight from the formulas, in double on the T inputs.
template <class T>
Reference reference(const Problem<T>& pr, const Mask& mask, const Features& f) {
  const AttentionShape& s = pr.shape;
  const std::int64_t nq = s.seq_q, nk = s.seq_k, d = s.head_dim, H = s.heads;
  const double scale = static_cast<double>(pr.scale), ninf = -std::numeric_limits<double>::infinity();
  Reference r;
  r.out.assign(pr.q.size(), 0.0);
  r.lse.assign(static_cast<std::size_t>(s.batch * H * nq), ninf);
  r.dq.assign(pr.q.size(), 0.0);
  r.dk.assign(pr.k.size(), 0.0);
  r.dv.assign(pr.v.size(), 0.0);
  r.dsinks.assign(static_cast<std::size_t>(H), 0.0);
  const double keep_scale = 1.0 / (1.0 - f.dropout_p);
  std::vector<double> S(static_cast<std::size_t>(nk)), G(static_cast<std::size_t>(nk)), P(static_cast<std::size_t>(nk)),
      Z(static_cast<std::size_t>(nk)), dP(static_cast<std::size_t>(nk));
  for (std::int64_t b = 0; b < s.batch; ++b) {
    for (std::int64_t h = 0; h < H; ++h) {
      const std::int64_t bh = b * H + h;
      const T* q = pr.q.data() + bh * nq * d;
      const T* k = pr.k.data() + bh * nk * d;
      const T* v = pr.v.data() + bh * nk * d;
      const T* go = pr.dout.data() + bh * nq * d;
      const double sink = f.sinks.empty() ? ninf : f.sinks[static_cast<std::size_t>(h)];
      for (std::int64_t i = 0; i < nq; ++i) {
        const std::int64_t pos = i + nk - nq;
        double mx = sink;
        for (std::int64_t j = 0; j < nk; ++j) {
          double raw = 0;
          for (std::int64_t c = 0; c < d; ++c) raw += static_cast<double>(q[i * d + c]) * static_cast<double>(k[j * d + c]);
          raw *= scale;
          double sc = raw, g = 1;
          if (f.softcap > 0) {
            const double t = std::tanh(raw / f.softcap);
            sc = f.softcap * t;
            g = 1 - t * t;
          }
          if (!f.slopes.empty()) sc -= f.slopes[static_cast<std::size_t>(h)] * std::abs(static_cast<double>(pos - j));
          S[j] = mask.visible(i, j, nq, nk) ? sc : ninf;
          G[j] = g;
          mx = std::max(mx, S[j]);
          Z[j] = f.dropout_p > 0 ? (ped_dropout_keep(f.seed, b, h, i, j, f.dropout_p) ? keep_scale : 0.0) : 1.0;
        }
        if (mx == ninf) continue;  // no key, no sink: out 0, lse -inf, no gradient
        double sum = sink == ninf ? 0.0 : std::exp(sink - mx);
        for (std::int64_t j = 0; j < nk; ++j) sum += S[j] == ninf ? 0.0 : std::exp(S[j] - mx);
        r.lse[static_cast<std::size_t>(bh * nq + i)] = mx + std::log(sum);
        for (std::int64_t j = 0; j < nk; ++j) P[j] = S[j] == ninf ? 0.0 : std::exp(S[j] - mx) / sum;
        const double p_sink = sink == ninf ? 0.0 : std::exp(sink - mx) / sum;
        double* o = r.out.data() + bh * nq * d + i * d;
        for (std::int64_t j = 0; j < nk; ++j) {
          for (std::int64_t c = 0; c < d; ++c) o[c] += P[j] * Z[j] * static_cast<double>(v[j * d + c]);
        }
        double D = 0;
        for (std::int64_t c = 0; c < d; ++c) D += static_cast<double>(go[i * d + c]) * o[c];
        for (std::int64_t j = 0; j < nk; ++j) {
          double dpv = 0;
          for (std::int64_t c = 0; c < d; ++c) dpv += static_cast<double>(go[i * d + c]) * static_cast<double>(v[j * d + c]);
          dP[j] = dpv * Z[j];
          double* dvj = r.dv.data() + bh * nk * d + j * d;
          for (std::int64_t c = 0; c < d; ++c) dvj[c] += P[j] * Z[j] * static_cast<double>(go[i * d + c]);
        }
        for (std::int64_t j = 0; j < nk; ++j) {
          const double ds = P[j] * (dP[j] - D) * G[j] * scale;
          double* dqi = r.dq.data() + bh * nq * d + i * d;
          double* dkj = r.dk.data() + bh * nk * d + j * d;
          for (std::int64_t c = 0; c < d; ++c) {
            dqi[c] += ds * static_cast<double>(k[j * d + c]);
            dkj[c] += ds * static_cast<double>(q[i * d + c]);
          }
        }
        if (!f.sinks.empty()) r.dsinks[static_cast<std::size_t>(h)] -= p_sink * D;
      }
    }
  }
  return r;
}

template <class T>
double rel_err(const std::vector<T>& a, const std::vector<double>& b) {
  std::vector<double> ad(a.begin(), a.end());
  return norm_rel_err(ad, b);
}

struct Outcome {
  Result<double> r;  // in double whatever T, for bitwise comparisons and errors alike
  std::vector<double> dsinks;
};

template <class T>
Outcome run_features(const AttentionImpl& impl, const Problem<T>& p, const Mask& mask, const Features& f,
                     AttentionOptions options) {
  Outcome o;
  o.dsinks.assign(static_cast<std::size_t>(p.shape.heads), std::numeric_limits<double>::quiet_NaN());
  options.features = f.api(o.dsinks);
  const Result<T> r = run(impl, p, mask, options);
  auto widen = [](const std::vector<T>& x) { return std::vector<double>(x.begin(), x.end()); };
  o.r.out = widen(r.out);
  o.r.lse = widen(r.lse);
  o.r.dq = widen(r.dq);
  o.r.dk = widen(r.dk);
  o.r.dv = widen(r.dv);
  for (const RowStats<T>& st : r.stats) o.r.stats.push_back({static_cast<double>(st.max), static_cast<double>(st.inv_sum)});
  return o;
}

// Worst errors against the reference, per output.
struct Errors {
  double out = 0, lse = 0, dq = 0, dk = 0, dv = 0, dsinks = 0;
  double worst() const { return std::max({out, lse, dq, dk, dv, dsinks}); }
};

template <class T>
Errors check(const AttentionImpl& impl, const Problem<T>& p, const Mask& mask, const Features& f,
             const AttentionOptions& options, double tol) {
  const Outcome o = run_features(impl, p, mask, f, options);
  const Reference e = reference(p, mask, f);
  Errors err;
  err.out = norm_rel_err(o.r.out, e.out);
  err.lse = norm_rel_err(o.r.lse, e.lse);
  err.dq = norm_rel_err(o.r.dq, e.dq);
  err.dk = norm_rel_err(o.r.dk, e.dk);
  err.dv = norm_rel_err(o.r.dv, e.dv);
  if (!f.sinks.empty()) err.dsinks = norm_rel_err(o.dsinks, e.dsinks);
  const std::string what = impl.name + " " + mask.name() + f.name() + " " + shape_string(p.shape) +
                           " tile_q=" + std::to_string(options.tile_q) + " tile_k=" + std::to_string(options.tile_k) +
                           " block=" + std::to_string(options.block_size) + " threads=" + std::to_string(options.threads);
  EXPECT_LE(err.out, tol) << what;
  EXPECT_LE(err.lse, tol) << what;
  EXPECT_LE(err.dq, tol) << what;
  EXPECT_LE(err.dk, tol) << what;
  EXPECT_LE(err.dv, tol) << what;
  EXPECT_LE(err.dsinks, tol) << what;
  return err;
}

std::vector<const AttentionImpl*> tiled_impls() { return {&attention_impl("flash"), &attention_impl("sparse")}; }

// Slopes and sinks per head, of the sizes models use (sinks near the row maxima, so that they take
// a real share of every row).
Features all_features(std::int64_t heads) {
  Features f;
  f.softcap = 2.5;
  f.dropout_p = 0.3;
  f.seed = 77;
  for (std::int64_t h = 0; h < heads; ++h) {
    f.slopes.push_back(0.25 / static_cast<double>(h + 1));
    f.sinks.push_back(0.5 - 0.4 * static_cast<double>(h));
  }
  return f;
}

std::vector<Features> feature_sets(std::int64_t heads) {
  const Features all = all_features(heads);
  Features cap, alibi, drop, sinks;
  cap.softcap = 1.5;  // below the scores' range at scale 2: the tanh saturates on part of each row
  alibi.slopes = all.slopes;
  drop.dropout_p = all.dropout_p;
  drop.seed = all.seed;
  sinks.sinks = all.sinks;
  return {cap, alibi, drop, sinks, all};
}

// Float: the kernels round each tile product and the exp to float; measured worst 5.6e-7 over these
// tests (dropout's 1 / (1 - p) rounded to float among them), double 1.4e-15. The bounds leave 20x
// and 700x for other BLAS kernels and instruction sets; a feature applied wrongly (a sink left out
// of B_i, the soft-cap's factor dropped from a dominated row) gives 1e-2 or more.
template <class T>
double tol() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

template <class T>
void sweep(double& worst) {
  const AttentionShape shape{.batch = 2, .heads = 3, .seq_q = 29, .seq_k = 37, .head_dim = 8};
  Problem<T> p = make_problem<T>(shape, kSeed + 11);
  p.scale = T{2};  // scores up to ~16: the soft-cap bites, rows are far from uniform
  // Masks whose block layouts at these tiles hold partial, full and empty blocks side by side (the
  // feature sweep of score_features_test.cpp runs none, causal, sliding windows and strided(3)).
  const std::vector<Mask> masks = {Mask::bigbird(4, 1, 1, 1, 5), Mask::strided(6, true)};
  for (const AttentionImpl* impl : tiled_impls()) {
    for (const AttentionOptions& options : tilings(*impl)) {
      for (const Mask& mask : masks) {
        for (const Features& f : feature_sets(shape.heads)) {
          worst = std::max(worst, check(*impl, p, mask, f, options, tol<T>()).worst());
        }
      }
    }
  }
}

TEST(TiledFeatures, EachFeatureAndAllTogetherMatchTheReference) {
  double worst_f = 0, worst_d = 0;
  sweep<float>(worst_f);
  sweep<double>(worst_d);
  std::printf("worst relative error: float %.3g, double %.3g\n", worst_f, worst_d);
}

// Both backward orders: B H = 6 on 2 or 3 threads runs one pass per (b, h), B H = 1 on 2 or 3
// threads two passes (dQ by tile rows, then dK, dV by tile columns); one thread runs one pass. Every
// feature on, a BigBird mask of 4-key blocks whose 7 x 5 tiles and 5 x 5 blocks are partial, full
// and empty: out, lse, the gradients and d sinks must be bitwise those of one thread, and match the
// reference.
template <class T>
void check_orders(const AttentionShape& shape) {
  Problem<T> p = make_problem<T>(shape, kSeed + 23);
  p.scale = T{2};
  const Features f = all_features(shape.heads);
  const Mask mask = Mask::bigbird(4, 1, 1, 1, 9);  // blocks of 4 across tiles of 5 and 7
  for (const std::int64_t tq : {7, 5}) {  // flash's 7 x 5 tiles, sparse's 5 x 5 blocks
    const BlockLayout layout = mask.block_layout(shape.seq_q, shape.seq_k, tq, 5);
    EXPECT_GT(layout.full_blocks, 0);
    EXPECT_GT(layout.partial_blocks, 0);
    EXPECT_GT(layout.empty_blocks, 0);
  }
  for (const AttentionImpl* impl : tiled_impls()) {
    AttentionOptions one{.threads = 1, .tile_q = 7, .tile_k = 5, .block_size = 5};
    AttentionOptions two = one;
    two.threads = 2;
    AttentionOptions three = one;
    three.threads = 3;
    const Outcome a = run_features(*impl, p, mask, f, one);
    for (const AttentionOptions& o : {two, three}) {
      const Outcome b = run_features(*impl, p, mask, f, o);
      const std::string what = impl->name + " " + shape_string(shape) + " threads=" + std::to_string(o.threads);
      EXPECT_EQ(a.r.out, b.r.out) << what;
      EXPECT_EQ(a.r.lse, b.r.lse) << what;
      EXPECT_EQ(a.r.dq, b.r.dq) << what;
      EXPECT_EQ(a.r.dk, b.r.dk) << what;
      EXPECT_EQ(a.r.dv, b.r.dv) << what;
      EXPECT_EQ(a.dsinks, b.dsinks) << what;
    }
    check(*impl, p, mask, f, two, tol<T>());
  }
}

TEST(TiledFeatures, BothBackwardOrdersAreBitwiseEqualAndRight) {
  for (const AttentionShape& shape : {AttentionShape{.batch = 2, .heads = 3, .seq_q = 31, .seq_k = 26, .head_dim = 6},
                                      AttentionShape{.batch = 1, .heads = 1, .seq_q = 31, .seq_k = 26, .head_dim = 6}}) {
    check_orders<float>(shape);
    check_orders<double>(shape);
  }
}

// Rows dominated by one key (inv_sum > 1/2, variants/kernels.hpp) take the exact dS path; with a
// sink the sink's probability is part of 1 - P_ij*, and a soft-cap's factor multiplies the exact dS
// too. Large scores make most rows dominated; the sinks sit close enough to the row maxima to hold
// a few percent of each row, and the soft-cap is wide enough to leave the scores apart.
template <class T>
void check_dominated(double& worst) {
  const AttentionShape shape{.batch = 1, .heads = 2, .seq_q = 24, .seq_k = 30, .head_dim = 8};
  Problem<T> p = make_problem<T>(shape, kSeed + 31);
  p.scale = T{6};
  Features f = all_features(shape.heads);
  f.softcap = 40;
  f.sinks = {4.0, 6.0};
  for (const AttentionImpl* impl : tiled_impls()) {
    for (const AttentionOptions& options :
         {AttentionOptions{.threads = 1, .tile_q = 5, .tile_k = 7, .block_size = 6},
          AttentionOptions{.threads = 2, .tile_q = 5, .tile_k = 7, .block_size = 6}}) {  // B H = 2: two passes
      for (const Mask& mask : {Mask::none(), Mask::causal()}) {
        const Outcome o = run_features(*impl, p, mask, f, options);
        std::int64_t dominated = 0;
        for (std::size_t i = 0; i < o.r.stats.size(); ++i) {
          const double sink = f.sinks[i / static_cast<std::size_t>(shape.seq_q)];
          if (o.r.stats[i].inv_sum > 0.5 && o.r.stats[i].max > sink) ++dominated;  // by a key, not the sink
        }
        EXPECT_GE(dominated, 10) << impl->name << " " << mask.name();
        worst = std::max(worst, check(*impl, p, mask, f, options, tol<T>()).worst());
      }
    }
  }
}

TEST(TiledFeatures, DominatedRowsUnderSinksSoftcapAndDropout) {
  double worst_f = 0, worst_d = 0;
  check_dominated<float>(worst_f);
  check_dominated<double>(worst_d);
  std::printf("worst relative error: float %.3g, double %.3g\n", worst_f, worst_d);
}

}  // namespace
}  // namespace ped::test
