// The score-level features (ALiBi, soft-cap, dropout, sinks), alone and with grouped-query heads,
// per-sequence lengths and masks, in every built-in implementation that declares them
// (AttentionImpl::features): an implementation that starts declaring a feature is swept here
// without editing this file. B batch, H heads, H_kv key/value heads, Nq/Nk query/key tokens, d head dim.
//   - naive against a brute-force double reference written here from the formulas of
//     variants/attention.hpp (out, lse, dq, dk, dv, dsinks by their closed-form gradients);
//   - every declaring implementation's backward (dq, dk, dv, dsinks) against central finite
//     differences of its own forward in double (dropout's mask is fixed by its seed, so the loss
//     is smooth in every input);
//   - every declaring implementation against naive in double, in float and double, over its
//     tilings (many small tiles);
//   - edge cases: soft-cap with scores far above the cap, dropout bitwise the same for 1 and 2
//     threads, dropout_p = 0 the same as no dropout, the hash's keep rate, rows without a visible
//     key under sinks, H_kv = 1 and H_kv = H.
#include <gtest/gtest.h>

#include <pedestrian/attention_dropout.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "variants/attention.hpp"
#include "variants/registry.hpp"
#include "variants/tests/test_util.hpp"

namespace ped::test {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// One sweep case: a mask, the shape's grouping and the features it switches on.
struct Case {
  std::string name;
  Mask mask;
  std::int64_t heads_kv = 0;  // 0: H_kv = H
  bool lengths = false, alibi = false, softcap = false, dropout = false, sinks = false;
  std::int64_t seq_q = 29, seq_k = 37;  // agreement shape (FD runs a tiny one)
  double qk_scale = 1;  // q and k times this: > 1 makes rows dominated by one key
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {.name = "alibi", .mask = Mask::none(), .alibi = true},
      {.name = "softcap", .mask = Mask::none(), .softcap = true},
      {.name = "dropout", .mask = Mask::none(), .dropout = true},
      {.name = "sinks", .mask = Mask::none(), .sinks = true},
      {.name = "gqa_causal_sliding_window", .mask = Mask::causal_sliding_window(5), .heads_kv = 2},
      {.name = "lengths_causal", .mask = Mask::causal(), .lengths = true},
      {.name = "alibi_causal", .mask = Mask::causal(), .alibi = true},
      {.name = "softcap_causal", .mask = Mask::causal(), .softcap = true},
      {.name = "dropout_causal", .mask = Mask::causal(), .dropout = true},
      // Nq > Nk under causal: the first Nq - Nk rows see no key, and only the sink.
      {.name = "sinks_causal_rows_without_key", .mask = Mask::causal(), .sinks = true, .seq_q = 37, .seq_k = 29},
      {.name = "mqa_alibi_sinks", .mask = Mask::sliding_window(6, 2), .heads_kv = 1, .alibi = true, .sinks = true},
      {.name = "all_features_causal",
       .mask = Mask::causal(),
       .heads_kv = 2,
       .lengths = true,
       .alibi = true,
       .softcap = true,
       .dropout = true,
       .sinks = true},
      // Scores of ~+-10 over a narrow window: most rows are dominated by one key (P > 1/2), where
      // blocked computes that key's dS in its exact form (variants/kernels.hpp, "dominated rows").
      {.name = "dominated_rows_softcap_dropout_sinks",
       .mask = Mask::causal_sliding_window(4),
       .softcap = true,
       .dropout = true,
       .sinks = true,
       .qk_scale = 6},
      {.name = "all_features_strided",
       .mask = Mask::strided(3, false),
       .heads_kv = 1,
       .lengths = true,
       .alibi = true,
       .softcap = true,
       .dropout = true,
       .sinks = true},
  };
  return c;
}

AttentionShape case_shape(const Case& c, bool tiny) {
  AttentionShape s{.batch = c.lengths ? 3 : 2, .heads = 4, .seq_q = c.seq_q, .seq_k = c.seq_k, .head_dim = 8};
  if (tiny) s = {.batch = c.lengths ? 3 : 1, .heads = 4, .seq_q = 5, .seq_k = 6, .head_dim = 3};
  if (tiny && c.seq_q > c.seq_k) std::swap(s.seq_q, s.seq_k);
  s.heads_kv = c.heads_kv == 0 ? 0 : std::min(c.heads_kv, s.heads);
  if (s.heads_kv == s.heads) s.heads_kv = 0;
  return s;
}

// The arrays a call's AttentionFeatures point into.
struct FeatureData {
  std::vector<double> slopes, sinks, dsinks;
  std::vector<std::int64_t> seqlens_q, seqlens_k;
  double softcap = 0, dropout_p = 0;
  std::uint64_t seed = 0;

  AttentionFeatures features() {
    AttentionFeatures f;
    f.alibi_slopes = slopes.empty() ? nullptr : slopes.data();
    f.sinks = sinks.empty() ? nullptr : sinks.data();
    f.dsinks = sinks.empty() ? nullptr : dsinks.data();
    f.seqlens_q = seqlens_q.empty() ? nullptr : seqlens_q.data();
    f.seqlens_k = seqlens_k.empty() ? nullptr : seqlens_k.data();
    f.softcap = softcap;
    f.dropout_p = dropout_p;
    f.dropout_seed = seed;
    return f;
  }
};

FeatureData case_features(const Case& c, const AttentionShape& s) {
  FeatureData f;
  for (std::int64_t h = 0; h < s.heads; ++h) {
    if (c.alibi) f.slopes.push_back(0.4 / static_cast<double>(h + 1));
    if (c.sinks) f.sinks.push_back(std::vector<double>{0.5, -0.3, 1.2, -1.0}[static_cast<std::size_t>(h % 4)]);
  }
  f.dsinks.assign(f.sinks.size(), -7.0);  // poison: the backward must overwrite it
  if (c.lengths) {  // a full sequence, an empty one, and one with more queries than keys
    f.seqlens_q = {s.seq_q, 0, s.seq_q - 1};
    f.seqlens_k = {s.seq_k, 2, std::max<std::int64_t>(1, s.seq_q - 3)};
  }
  if (c.softcap) f.softcap = c.qk_scale > 1 ? 12 : 0.6;  // |s q.k| reaches ~1 (~15 scaled): tanh far from linear
  if (c.dropout) {
    f.dropout_p = 0.3;
    f.seed = 97;
  }
  return f;
}

// Forward and backward results of the brute-force reference, in double.
struct Reference {
  std::vector<double> out, lse, dq, dk, dv, dsinks;
};

// Straight from the formulas of variants/attention.hpp, one (b, h, i, j) at a time.
Reference brute_force(const Problem<double>& p, const Mask& mask, const AttentionFeatures& f) {
  const AttentionShape& s = p.shape;
  const std::int64_t H = s.heads, Hkv = s.kv_heads(), group = H / Hkv, d = s.head_dim;
  Reference r;
  r.out.assign(p.q.size(), 0.0);
  r.lse.assign(static_cast<std::size_t>(s.batch * H * s.seq_q), kNegInf);
  r.dq.assign(p.q.size(), 0.0);
  r.dk.assign(p.k.size(), 0.0);
  r.dv.assign(p.v.size(), 0.0);
  r.dsinks.assign(f.sinks != nullptr ? static_cast<std::size_t>(H) : 0, 0.0);
  for (std::int64_t b = 0; b < s.batch; ++b) {
    const std::int64_t lq = f.seqlens_q != nullptr ? f.seqlens_q[b] : s.seq_q;
    const std::int64_t lk = f.seqlens_k != nullptr ? f.seqlens_k[b] : s.seq_k;
    for (std::int64_t h = 0; h < H; ++h) {
      const std::size_t qb = static_cast<std::size_t>((b * H + h) * s.seq_q * d);
      const std::size_t kb = static_cast<std::size_t>((b * Hkv + h / group) * s.seq_k * d);
      const double sink = f.sinks != nullptr ? f.sinks[h] : kNegInf;
      const double slope = f.alibi_slopes != nullptr ? f.alibi_slopes[h] : 0.0;
      const double zscale = 1.0 / (1.0 - f.dropout_p);
      for (std::int64_t i = 0; i < lq; ++i) {
        const double pos = static_cast<double>(i + lk - lq);
        std::vector<double> S(static_cast<std::size_t>(lk), kNegInf), t(static_cast<std::size_t>(lk), 0.0);
        std::vector<double> Z(static_cast<std::size_t>(lk), 1.0);
        for (std::int64_t j = 0; j < lk; ++j) {
          if (f.dropout_p > 0) Z[j] = ped_dropout_keep(f.dropout_seed, b, h, i, j, f.dropout_p) ? zscale : 0.0;
          if (!mask.visible(i, j, lq, lk)) continue;
          double dot = 0;
          for (std::int64_t c = 0; c < d; ++c) dot += p.q[qb + i * d + c] * p.k[kb + j * d + c];
          double x = p.scale * dot;
          if (f.softcap > 0) {
            t[j] = std::tanh(x / f.softcap);
            x = f.softcap * t[j];
          }
          S[j] = x - slope * std::abs(pos - static_cast<double>(j));
        }
        double m = sink;
        for (double x : S) m = std::max(m, x);
        if (m == kNegInf) continue;  // no key, no sink: out 0, lse -inf, no gradient
        double denom = std::exp(sink - m);
        for (double x : S) denom += std::exp(x - m);
        r.lse[static_cast<std::size_t>((b * H + h) * s.seq_q + i)] = m + std::log(denom);
        std::vector<double> P(static_cast<std::size_t>(lk));
        for (std::int64_t j = 0; j < lk; ++j) P[j] = std::exp(S[j] - m) / denom;
        const double psink = std::exp(sink - m) / denom;
        // O_i = sum_j P_ij Z_ij v_j
        for (std::int64_t j = 0; j < lk; ++j) {
          for (std::int64_t c = 0; c < d; ++c) r.out[qb + i * d + c] += P[j] * Z[j] * p.v[kb + j * d + c];
        }
        // D_i = dO_i . O_i; dP_ij = dO_i . v_j Z_ij; dS = P (dP - D) (1 - t^2)
        double D = 0;
        for (std::int64_t c = 0; c < d; ++c) D += p.dout[qb + i * d + c] * r.out[qb + i * d + c];
        if (f.sinks != nullptr) r.dsinks[h] -= psink * D;
        for (std::int64_t j = 0; j < lk; ++j) {
          double dp = 0;
          for (std::int64_t c = 0; c < d; ++c) dp += p.dout[qb + i * d + c] * p.v[kb + j * d + c];
          const double ds = P[j] * (dp * Z[j] - D) * (1 - t[j] * t[j]);
          for (std::int64_t c = 0; c < d; ++c) {
            r.dq[qb + i * d + c] += p.scale * ds * p.k[kb + j * d + c];
            r.dk[kb + j * d + c] += p.scale * ds * p.q[qb + i * d + c];
            r.dv[kb + j * d + c] += P[j] * Z[j] * p.dout[qb + i * d + c];
          }
        }
      }
    }
  }
  return r;
}

template <class T>
std::vector<double> to_double(const std::vector<T>& x) {
  return std::vector<double>(x.begin(), x.end());
}

template <class T>
Problem<double> as_double(const Problem<T>& p) {
  return {p.shape, static_cast<double>(p.scale), to_double(p.q), to_double(p.k), to_double(p.v), to_double(p.dout)};
}

// The case's inputs: make_problem's, with q and k times c.qk_scale.
template <class T>
Problem<T> case_problem(const Case& c, const AttentionShape& shape, std::uint64_t seed) {
  Problem<T> p = make_problem<T>(shape, seed);
  for (T& x : p.q) x *= static_cast<T>(c.qk_scale);
  for (T& x : p.k) x *= static_cast<T>(c.qk_scale);
  return p;
}

bool declares_all(const AttentionImpl& impl, std::uint32_t used) { return (impl.features & used) == used; }

// The built-ins that implement every feature a call uses, with a backward.
std::vector<const AttentionImpl*> declaring(std::uint32_t used) {
  std::vector<const AttentionImpl*> r;
  for (const AttentionImpl* impl : builtin_impls()) {
    if (declares_all(*impl, used) && impl->has_backward<double>()) r.push_back(impl);
  }
  return r;
}

// Worst error per (case, implementation, dtype), printed at the end of the run.
void note(const std::string& key, double err) {
  note_worst("score features: worst normwise relative error (reference), seed " + std::to_string(kSeed), key, err);
}

// ---- naive against the brute-force reference ------------------------------------------------------

template <class T>
void check_naive_against_brute_force(const Case& c) {
  const AttentionShape shape = case_shape(c, false);
  FeatureData fd = case_features(c, shape);
  const AttentionFeatures f = fd.features();
  SCOPED_TRACE(c.name + " " + shape_string(shape) + " H_kv=" + std::to_string(shape.kv_heads()) +
               (std::is_same_v<T, float> ? " float" : " double") + " seed=" + std::to_string(kSeed));
  const Problem<T> p = case_problem<T>(c, shape, kSeed);
  const Reference ref = brute_force(as_double(p), c.mask, f);
  AttentionOptions opt{.threads = 2};
  opt.features = f;
  const Result<T> r = run(attention_impl("naive"), p, c.mask, opt);
  const double tol = std::is_same_v<T, float> ? kTolFloat : kTolDouble;
  const std::pair<const char*, double> errs[] = {
      {"out", norm_rel_err(to_double(r.out), ref.out)}, {"lse", norm_rel_err(to_double(r.lse), ref.lse)},
      {"dq", norm_rel_err(to_double(r.dq), ref.dq)},    {"dk", norm_rel_err(to_double(r.dk), ref.dk)},
      {"dv", norm_rel_err(to_double(r.dv), ref.dv)},    {"dsinks", norm_rel_err(fd.dsinks, ref.dsinks)}};
  for (const auto& [name, err] : errs) {
    EXPECT_LE(err, tol) << name;
    note(c.name + " naive-vs-brute-force " + (std::is_same_v<T, float> ? "float " : "double ") + name, err);
  }
}

// The features change the result: without them the reference differs (so the comparisons above
// cannot pass by a kernel ignoring a feature).
TEST(ScoreFeatures, EachScoreFeatureChangesTheResult) {
  for (const Case& c : cases()) {
    if (!(c.alibi || c.softcap || c.dropout || c.sinks)) continue;
    const AttentionShape shape = case_shape(c, false);
    FeatureData fd = case_features(c, shape);
    const Problem<double> p = case_problem<double>(c, shape, kSeed);
    AttentionFeatures with = fd.features(), without = with;
    without.alibi_slopes = nullptr;
    without.softcap = 0;
    without.dropout_p = 0;
    without.sinks = nullptr;
    const Reference a = brute_force(p, c.mask, with), b = brute_force(p, c.mask, without);
    EXPECT_GT(norm_rel_err(a.out, b.out), 1e-2) << c.name;
    EXPECT_GT(norm_rel_err(a.dq, b.dq), 1e-2) << c.name;
  }
}

TEST(ScoreFeatures, NaiveMatchesBruteForceReference) {
  for (const Case& c : cases()) {
    check_naive_against_brute_force<double>(c);
    check_naive_against_brute_force<float>(c);
  }
}

// ---- finite differences ---------------------------------------------------------------------------

TEST(ScoreFeatures, EveryDeclaringBackwardMatchesFiniteDifferences) {
  int checked = 0;
  for (const Case& c : cases()) {
    const AttentionShape shape = case_shape(c, true);
    FeatureData fd = case_features(c, shape);
    AttentionOptions opt{.threads = 1};
    opt.features = fd.features();
    for (const AttentionImpl* impl : declaring(opt.features.used(shape))) {
      SCOPED_TRACE(impl->name + " " + c.name + " " + shape_string(shape) + " seed=" + std::to_string(kSeed));
      Problem<double> p = case_problem<double>(c, shape, kSeed + 1);
      const Result<double> r = run(*impl, p, c.mask, opt);
      const std::vector<double> dsinks = fd.dsinks;
      struct Input {
        std::vector<double>* x;
        const std::vector<double>* grad;
        const char* name;
      };
      std::vector<Input> inputs = {{&p.q, &r.dq, "dq"}, {&p.k, &r.dk, "dk"}, {&p.v, &r.dv, "dv"}};
      if (!fd.sinks.empty()) inputs.push_back({&fd.sinks, &dsinks, "dsinks"});
      for (const Input& in : inputs) {
        const double err = norm_rel_err(*in.grad, fd_gradient(*impl, p, *in.x, c.mask, opt));
        EXPECT_LE(err, kTolFd) << in.name;
        note(c.name + " " + impl->name + "-vs-fd double " + in.name, err);
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, static_cast<int>(cases().size()));  // naive declares every feature
}

// ---- every declaring implementation against naive ------------------------------------------------

template <class T>
void check_against_naive(const AttentionImpl& impl, const Case& c) {
  const AttentionShape shape = case_shape(c, false);
  FeatureData fd = case_features(c, shape);
  const Problem<T> p = case_problem<T>(c, shape, kSeed + 2);
  AttentionOptions ref_opt{.threads = 2};
  ref_opt.features = fd.features();
  const Result<double> ref = run(attention_impl("naive"), as_double(p), c.mask, ref_opt);
  const std::vector<double> ref_dsinks = fd.dsinks;
  const double tol = std::is_same_v<T, float> ? kTolFloat : kTolDouble;
  for (AttentionOptions opt : tilings(impl)) {
    SCOPED_TRACE(impl.name + " " + c.name + " " + shape_string(shape) + " tile_q=" + std::to_string(opt.tile_q) +
                 " tile_k=" + std::to_string(opt.tile_k) + " block_size=" + std::to_string(opt.block_size) +
                 (std::is_same_v<T, float> ? " float" : " double") + " seed=" + std::to_string(kSeed + 2));
    opt.features = fd.features();
    const Result<T> r = run(impl, p, c.mask, opt);
    for (const auto* x : {&r.out, &r.lse, &r.dq, &r.dk, &r.dv}) ASSERT_FALSE(has_nan_or_inf(*x));
    const std::pair<const char*, double> errs[] = {
        {"out", norm_rel_err(to_double(r.out), ref.out)}, {"lse", norm_rel_err(to_double(r.lse), ref.lse)},
        {"dq", norm_rel_err(to_double(r.dq), ref.dq)},    {"dk", norm_rel_err(to_double(r.dk), ref.dk)},
        {"dv", norm_rel_err(to_double(r.dv), ref.dv)},    {"dsinks", norm_rel_err(fd.dsinks, ref_dsinks)}};
    for (const auto& [name, err] : errs) {
      EXPECT_LE(err, tol) << name;
      note(c.name + " " + impl.name + "-vs-naive " + (std::is_same_v<T, float> ? "float " : "double ") + name, err);
    }
  }
}

TEST(ScoreFeatures, EveryDeclaringImplementationMatchesNaive) {
  for (const Case& c : cases()) {
    const AttentionShape shape = case_shape(c, false);
    FeatureData fd = case_features(c, shape);
    for (const AttentionImpl* impl : declaring(fd.features().used(shape))) {
      if (impl->name == "naive") continue;  // the reference; checked against brute force above
      check_against_naive<double>(*impl, c);
      check_against_naive<float>(*impl, c);
    }
  }
}

// The dominated case has what it is for: rows where one key holds P > 1/2 next to a sink.
TEST(ScoreFeatures, DominatedCaseHasDominatedRows) {
  const Case& c = cases()[12];
  ASSERT_EQ(c.name, "dominated_rows_softcap_dropout_sinks");
  const AttentionShape shape = case_shape(c, false);
  FeatureData fd = case_features(c, shape);
  const Problem<double> p = case_problem<double>(c, shape, kSeed + 2);
  AttentionOptions opt{.threads = 2};
  opt.features = fd.features();
  const Result<double> r = run(attention_impl("naive"), p, c.mask, opt);
  std::int64_t dominated = 0;
  for (std::size_t row = 0; row < r.stats.size(); ++row) {
    const RowStats<double>& st = r.stats[row];
    const std::size_t h = (row / static_cast<std::size_t>(shape.seq_q)) % static_cast<std::size_t>(shape.heads);
    // the top key's P = inv_sum when the max is a key's score (not the sink's)
    const double sink_p = std::exp(fd.sinks[h] - st.max) * st.inv_sum;
    dominated += st.inv_sum > 0.5 && sink_p < 0.5 ? 1 : 0;
  }
  EXPECT_GT(dominated, static_cast<std::int64_t>(r.stats.size()) / 4);
}

// ---- edge cases -----------------------------------------------------------------------------------

// Scores of |s q.k| ~ 1e3 against a cap of 30: every score lands in (-30, 30), exp cannot overflow,
// and the tanh saturates for most pairs (its derivative 1 - t^2 underflows towards 0 there). Checked
// against the brute-force reference in both types.
template <class T>
void check_softcap_huge(const AttentionImpl& impl) {
  const AttentionShape shape{.batch = 1, .heads = 2, .seq_q = 17, .seq_k = 23, .head_dim = 8};
  Problem<T> p = make_problem<T>(shape, kSeed + 3);
  for (T& x : p.q) x *= T{60};
  for (T& x : p.k) x *= T{60};
  FeatureData fd;
  fd.softcap = 30;
  AttentionOptions opt{.threads = 2};
  opt.features = fd.features();
  const Problem<double> pd = as_double(p);
  double max_raw = 0;
  for (std::int64_t i = 0; i < shape.heads * shape.seq_q; ++i) {
    for (std::int64_t j = 0; j < shape.seq_k; ++j) {
      const std::int64_t h = i / shape.seq_q;
      double dot = 0;
      for (std::int64_t c = 0; c < shape.head_dim; ++c) {
        dot += pd.q[static_cast<std::size_t>(i * shape.head_dim + c)] *
               pd.k[static_cast<std::size_t>((h * shape.seq_k + j) * shape.head_dim + c)];
      }
      max_raw = std::max(max_raw, std::abs(pd.scale * dot));
    }
  }
  ASSERT_GT(max_raw, 1e3);  // the scores are far above the cap
  const Reference ref = brute_force(pd, Mask::causal(), opt.features);
  const double tol = std::is_same_v<T, float> ? kTolFloat : kTolDouble;
  for (AttentionOptions o : tilings(impl)) {
    SCOPED_TRACE(impl.name + (std::is_same_v<T, float> ? " float" : " double") + " tile_q=" + std::to_string(o.tile_q));
    o.features = opt.features;
    const Result<T> r = run(impl, p, Mask::causal(), o);
    for (const auto* x : {&r.out, &r.lse, &r.dq, &r.dk, &r.dv}) ASSERT_FALSE(has_nan_or_inf(*x));
    for (T l : r.lse) EXPECT_LE(static_cast<double>(l), 30 + std::log(static_cast<double>(shape.seq_k)) + 1e-3);
    const std::pair<const char*, double> errs[] = {
        {"out", norm_rel_err(to_double(r.out), ref.out)}, {"lse", norm_rel_err(to_double(r.lse), ref.lse)},
        {"dq", norm_rel_err(to_double(r.dq), ref.dq)},    {"dk", norm_rel_err(to_double(r.dk), ref.dk)},
        {"dv", norm_rel_err(to_double(r.dv), ref.dv)}};
    for (const auto& [name, err] : errs) {
      EXPECT_LE(err, tol) << name;
      note(std::string("softcap_scores_1e3 ") + impl.name + "-vs-brute-force " +
               (std::is_same_v<T, float> ? "float " : "double ") + name,
           err);
    }
  }
}

TEST(ScoreFeatures, SoftcapBoundsScoresFarAboveTheCap) {
  for (const AttentionImpl* impl : declaring(attention_feature_bit(AttentionFeature::softcap))) {
    check_softcap_huge<double>(*impl);
    check_softcap_huge<float>(*impl);
  }
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

TEST(ScoreFeatures, DropoutIsBitwiseTheSameForOneAndTwoThreads) {
  const Case& c = cases()[8];  // dropout_causal
  ASSERT_EQ(c.name, "dropout_causal");
  const AttentionShape shape = case_shape(c, false);
  for (const AttentionImpl* impl : declaring(attention_feature_bit(AttentionFeature::dropout))) {
    for (const AttentionOptions& tiles : tilings(*impl)) {
      FeatureData fd = case_features(c, shape);
      const Problem<float> p = make_problem<float>(shape, kSeed + 4);
      AttentionOptions one = tiles, two = tiles;
      one.threads = 1;
      two.threads = 2;
      one.features = two.features = fd.features();
      const Result<float> a = run(*impl, p, c.mask, one), b = run(*impl, p, c.mask, two);
      EXPECT_TRUE(bitwise_equal(a.out, b.out) && bitwise_equal(a.lse, b.lse) && bitwise_equal(a.dq, b.dq) &&
                  bitwise_equal(a.dk, b.dk) && bitwise_equal(a.dv, b.dv))
          << impl->name << " tile_q=" << tiles.tile_q;
    }
  }
}

TEST(ScoreFeatures, DropoutProbabilityZeroIsNoDropout) {
  const AttentionShape shape{.batch = 2, .heads = 2, .seq_q = 19, .seq_k = 21, .head_dim = 8};
  const Problem<double> p = make_problem<double>(shape, kSeed + 5);
  for (const AttentionImpl* impl : builtin_impls()) {
    AttentionOptions off{.threads = 2}, zero{.threads = 2};
    zero.features.dropout_p = 0;
    zero.features.dropout_seed = 12345;
    const Result<double> a = run(*impl, p, Mask::causal(), off), b = run(*impl, p, Mask::causal(), zero);
    EXPECT_TRUE(bitwise_equal(a.out, b.out) && bitwise_equal(a.dq, b.dq) && bitwise_equal(a.dk, b.dk) &&
                bitwise_equal(a.dv, b.dv))
        << impl->name;
  }
}

// The hash keeps each pair with probability 1 - p: over n = 2^16 pairs the count is within 5
// standard deviations sqrt(n p (1 - p)) of n (1 - p) (a failure by chance: < 1e-6), and changing
// the seed, b, h, i or j changes the draw.
TEST(ScoreFeatures, DropoutKeepRateIsOneMinusP) {
  for (double drop : {0.1, 0.3, 0.5, 0.9}) {
    const std::uint64_t threshold = ped_dropout_threshold(drop);
    double kept = 0, n = 0;
    for (std::int64_t b = 0; b < 2; ++b) {
      for (std::int64_t h = 0; h < 2; ++h) {
        for (std::int64_t i = 0; i < 128; ++i) {
          const std::uint64_t key = ped_dropout_row_key(2026, b, h, i);
          for (std::int64_t j = 0; j < 128; ++j, ++n) kept += ped_dropout_keep_at(key, j, threshold) ? 1 : 0;
        }
      }
    }
    const double sigma = std::sqrt(n * drop * (1 - drop));
    EXPECT_NEAR(kept, n * (1 - drop), 5 * sigma) << "p=" << drop;
  }
  // A different seed gives a different mask (about half the pairs differ at p = 0.5).
  int differ = 0;
  for (std::int64_t j = 0; j < 256; ++j) differ += ped_dropout_keep(1, 0, 0, 3, j, 0.5) != ped_dropout_keep(2, 0, 0, 3, j, 0.5);
  EXPECT_GT(differ, 64);
}

// Rows that see no key under a sink: out 0, lse = the sink exactly (stats {sink, 1}), dq 0, and
// they add nothing to dsinks (D_i = dO_i . 0).
TEST(ScoreFeatures, RowWithoutVisibleKeyUnderSinks) {
  const Case& c = cases()[9];
  ASSERT_EQ(c.name, "sinks_causal_rows_without_key");
  const AttentionShape shape = case_shape(c, false);
  const std::int64_t empty_rows = shape.seq_q - shape.seq_k;
  ASSERT_GT(empty_rows, 0);
  for (const AttentionImpl* impl : declaring(attention_feature_bit(AttentionFeature::sinks))) {
    FeatureData fd = case_features(c, shape);
    const Problem<float> p = make_problem<float>(shape, kSeed + 6);
    AttentionOptions opt{.threads = 2};
    opt.features = fd.features();
    const Result<float> r = run(*impl, p, c.mask, opt);
    for (std::int64_t bh = 0; bh < shape.batch * shape.heads; ++bh) {
      const std::int64_t h = bh % shape.heads;
      for (std::int64_t i = 0; i < empty_rows; ++i) {
        const std::size_t row = static_cast<std::size_t>(bh * shape.seq_q + i);
        EXPECT_EQ(r.lse[row], static_cast<float>(fd.sinks[static_cast<std::size_t>(h)])) << impl->name;
        EXPECT_EQ(r.stats[row].inv_sum, 1.0f) << impl->name;
        for (std::int64_t e = 0; e < shape.head_dim; ++e) {
          EXPECT_EQ(r.out[row * shape.head_dim + e], 0.0f) << impl->name;
          EXPECT_EQ(r.dq[row * shape.head_dim + e], 0.0f) << impl->name;
        }
      }
    }
  }
}

// A non-finite input reaches d sink of its head (variants/nonfinite.hpp, mark_dsinks) and no other:
// a NaN in one q row of head 0 makes dsinks[0] NaN, dsinks[1] keeps its value from clean inputs.
TEST(ScoreFeatures, NonFiniteInputMakesOnlyItsHeadsDsinkNaN) {
  const AttentionShape shape{.batch = 2, .heads = 2, .seq_q = 6, .seq_k = 6, .head_dim = 4};
  int checked = 0;
  for (const AttentionImpl* impl : declaring(attention_feature_bit(AttentionFeature::sinks))) {
    for (std::int64_t heads_kv : {2, 1}) {  // one kernel call for the whole batch, and sliced (MQA)
      AttentionShape s = shape;
      s.heads_kv = heads_kv == 2 ? 0 : heads_kv;
      FeatureData fd;
      fd.sinks = {0.5, -0.3};
      fd.dsinks = {-7.0, -7.0};
      AttentionOptions opt{.threads = 2};
      opt.features = fd.features();
      Problem<double> p = make_problem<double>(s, kSeed + 7);
      run(*impl, p, Mask::causal(), opt);
      const std::vector<double> clean = fd.dsinks;
      p.q[static_cast<std::size_t>(3 * s.head_dim)] = std::nan("");  // (b 0, h 0, row 3)
      run(*impl, p, Mask::causal(), opt);
      EXPECT_TRUE(std::isnan(fd.dsinks[0])) << impl->name << " H_kv=" << heads_kv << " " << fd.dsinks[0];
      EXPECT_EQ(fd.dsinks[1], clean[1]) << impl->name << " H_kv=" << heads_kv;
      ++checked;
    }
  }
  EXPECT_GE(checked, 2);
}

}  // namespace
}  // namespace ped::test
