// Grouped-query heads and per-sequence lengths (variants/features.hpp): every built-in that declares
// them against the same implementation on the equivalent plain calls. B batch, H heads, H_kv
// key/value heads, Nq/Nk query/key tokens, d head dim.
//   GQA: k, v repeated to H heads (LibTorch's repeat_interleave) give the same out and lse, and the
//        plain dK, dV summed over each group's query heads give the GQA dK, dV.
//   lengths: each sequence run alone on its own rows gives the same rows; padding rows are out 0,
//        stats {-inf, 0}, dq, dk, dv 0, and the padding's contents are never read.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "variants/attention.hpp"
#include "variants/registry.hpp"
#include "variants/tests/test_util.hpp"

namespace ped::test {
namespace {

template <class T>
double tol() {
  return std::is_same_v<T, float> ? 2e-6 : 1e-13;
}

bool declares(const AttentionImpl& impl, AttentionFeature f) { return (impl.features & attention_feature_bit(f)) != 0; }

template <class T>
void check_gqa(const AttentionImpl& impl, std::int64_t heads_kv, const Mask& mask) {
  const AttentionShape gqa{.batch = 2, .heads = 6, .seq_q = 19, .seq_k = 23, .head_dim = 8, .heads_kv = heads_kv};
  const Problem<T> p = make_problem<T>(gqa, kSeed + static_cast<std::uint64_t>(heads_kv));
  const Result<T> r = run(impl, p, mask, AttentionOptions{.threads = 2});
  // The same call with k, v repeated to H heads.
  const std::int64_t group = gqa.heads / heads_kv, slice = gqa.seq_k * gqa.head_dim;
  Problem<T> plain = p;
  plain.shape.heads_kv = 0;
  plain.k.assign(static_cast<std::size_t>(gqa.batch * gqa.heads * slice), T{0});
  plain.v = plain.k;
  for (std::int64_t b = 0; b < gqa.batch; ++b) {
    for (std::int64_t h = 0; h < gqa.heads; ++h) {
      const std::int64_t from = (b * heads_kv + h / group) * slice, to = (b * gqa.heads + h) * slice;
      std::copy_n(p.k.begin() + from, slice, plain.k.begin() + to);
      std::copy_n(p.v.begin() + from, slice, plain.v.begin() + to);
    }
  }
  const Result<T> e = run(impl, plain, mask, AttentionOptions{.threads = 2});
  std::vector<T> dk(p.k.size(), T{0}), dv(p.v.size(), T{0});
  for (std::int64_t b = 0; b < gqa.batch; ++b) {
    for (std::int64_t h = 0; h < gqa.heads; ++h) {
      const std::int64_t from = (b * gqa.heads + h) * slice, to = (b * heads_kv + h / group) * slice;
      for (std::int64_t x = 0; x < slice; ++x) {
        dk[static_cast<std::size_t>(to + x)] += e.dk[static_cast<std::size_t>(from + x)];
        dv[static_cast<std::size_t>(to + x)] += e.dv[static_cast<std::size_t>(from + x)];
      }
    }
  }
  const std::string what = impl.name + " H_kv=" + std::to_string(heads_kv) + " " + mask.name();
  EXPECT_LE(norm_rel_err(r.out, e.out), tol<T>()) << what;
  EXPECT_LE(norm_rel_err(r.lse, e.lse), tol<T>()) << what;
  EXPECT_LE(norm_rel_err(r.dq, e.dq), tol<T>()) << what;
  EXPECT_LE(norm_rel_err(r.dk, dk), tol<T>()) << what;
  EXPECT_LE(norm_rel_err(r.dv, dv), tol<T>()) << what;
}

TEST(SlicedFeatures, GroupedQueryHeadsEqualRepeatedKeysAndGroupSums) {
  int checked = 0;
  for (const AttentionImpl* impl : builtin_impls()) {
    if (!declares(*impl, AttentionFeature::grouped_query) || !impl->has_backward<double>()) continue;
    for (std::int64_t heads_kv : {1, 2, 3, 6}) {  // MQA, GQA, GQA, plain (H_kv = H)
      for (const Mask& mask : {Mask::none(), Mask::causal_sliding_window(5)}) {
        check_gqa<float>(*impl, heads_kv, mask);
        check_gqa<double>(*impl, heads_kv, mask);
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 8);
}

template <class T>
void check_lengths(const AttentionImpl& impl, const Mask& mask) {
  const AttentionShape shape{.batch = 4, .heads = 2, .seq_q = 21, .seq_k = 26, .head_dim = 8};
  const std::vector<std::int64_t> lq{21, 1, 0, 9}, lk{26, 7, 5, 0};  // full, one token, empty q, empty k
  Problem<T> p = make_problem<T>(shape, kSeed + 7);
  // Padding holds NaN: a kernel that read it would spread it.
  const std::int64_t d = shape.head_dim;
  for (std::int64_t b = 0; b < shape.batch; ++b) {
    for (std::int64_t h = 0; h < shape.heads; ++h) {
      const std::int64_t bh = b * shape.heads + h;
      for (std::int64_t i = lq[static_cast<std::size_t>(b)] * d; i < shape.seq_q * d; ++i) {
        p.q[static_cast<std::size_t>(bh * shape.seq_q * d + i)] = std::numeric_limits<T>::quiet_NaN();
        p.dout[static_cast<std::size_t>(bh * shape.seq_q * d + i)] = std::numeric_limits<T>::quiet_NaN();
      }
      for (std::int64_t j = lk[static_cast<std::size_t>(b)] * d; j < shape.seq_k * d; ++j) {
        p.k[static_cast<std::size_t>(bh * shape.seq_k * d + j)] = std::numeric_limits<T>::quiet_NaN();
        p.v[static_cast<std::size_t>(bh * shape.seq_k * d + j)] = std::numeric_limits<T>::quiet_NaN();
      }
    }
  }
  AttentionOptions options{.threads = 2};
  options.features.seqlens_q = lq.data();
  options.features.seqlens_k = lk.data();
  const Result<T> r = run(impl, p, mask, options);
  for (std::int64_t b = 0; b < shape.batch; ++b) {
    const std::int64_t nq = lq[static_cast<std::size_t>(b)], nk = lk[static_cast<std::size_t>(b)];
    for (std::int64_t h = 0; h < shape.heads; ++h) {
      const std::int64_t bh = b * shape.heads + h;
      auto rows = [&](const std::vector<T>& x, std::int64_t n, std::int64_t from, std::int64_t to) {
        return std::vector<T>(x.begin() + (bh * n + from) * d, x.begin() + (bh * n + to) * d);
      };
      const std::string what = impl.name + " " + mask.name() + " b=" + std::to_string(b) + " h=" + std::to_string(h);
      // Padding: zeros and rows without keys.
      for (T x : rows(r.out, shape.seq_q, nq, shape.seq_q)) EXPECT_EQ(x, T{0}) << what;
      for (T x : rows(r.dq, shape.seq_q, nq, shape.seq_q)) EXPECT_EQ(x, T{0}) << what;
      for (T x : rows(r.dk, shape.seq_k, nk, shape.seq_k)) EXPECT_EQ(x, T{0}) << what;
      for (T x : rows(r.dv, shape.seq_k, nk, shape.seq_k)) EXPECT_EQ(x, T{0}) << what;
      for (std::int64_t i = nq; i < shape.seq_q; ++i) {
        EXPECT_EQ(r.lse[static_cast<std::size_t>(bh * shape.seq_q + i)], -std::numeric_limits<T>::infinity()) << what;
      }
      if (nq == 0 || nk == 0) {  // no pair: zeros everywhere
        for (T x : rows(r.out, shape.seq_q, 0, nq)) EXPECT_EQ(x, T{0}) << what;
        for (T x : rows(r.dq, shape.seq_q, 0, nq)) EXPECT_EQ(x, T{0}) << what;
        for (T x : rows(r.dk, shape.seq_k, 0, nk)) EXPECT_EQ(x, T{0}) << what;
        continue;
      }
      // The sequence alone.
      Problem<T> one;
      one.shape = AttentionShape{.batch = 1, .heads = 1, .seq_q = nq, .seq_k = nk, .head_dim = d};
      one.scale = p.scale;
      one.q = rows(p.q, shape.seq_q, 0, nq);
      one.dout = rows(p.dout, shape.seq_q, 0, nq);
      one.k = rows(p.k, shape.seq_k, 0, nk);
      one.v = rows(p.v, shape.seq_k, 0, nk);
      const Result<T> e = run(impl, one, mask, AttentionOptions{.threads = 2});
      EXPECT_LE(norm_rel_err(rows(r.out, shape.seq_q, 0, nq), e.out), tol<T>()) << what;
      EXPECT_LE(norm_rel_err(std::vector<T>(r.lse.begin() + bh * shape.seq_q, r.lse.begin() + bh * shape.seq_q + nq),
                             e.lse),
                tol<T>())
          << what;
      EXPECT_LE(norm_rel_err(rows(r.dq, shape.seq_q, 0, nq), e.dq), tol<T>()) << what;
      EXPECT_LE(norm_rel_err(rows(r.dk, shape.seq_k, 0, nk), e.dk), tol<T>()) << what;
      EXPECT_LE(norm_rel_err(rows(r.dv, shape.seq_k, 0, nk), e.dv), tol<T>()) << what;
    }
  }
}

TEST(SlicedFeatures, SequenceLengthsEqualEachSequenceAloneAndNeverReadPadding) {
  int checked = 0;
  for (const AttentionImpl* impl : builtin_impls()) {
    if (!declares(*impl, AttentionFeature::variable_length) || !impl->has_backward<double>()) continue;
    for (const Mask& mask : {Mask::none(), Mask::causal(), Mask::sliding_window(3, 2)}) {
      check_lengths<float>(*impl, mask);
      check_lengths<double>(*impl, mask);
      ++checked;
    }
  }
  EXPECT_GE(checked, 12);
}

TEST(SlicedFeatures, AnImplementationRefusesFeaturesItDoesNotDeclare) {
  AttentionImpl impl = *find_attention_impl("naive");
  impl.name = "naive_plain_only";
  impl.features = 0;
  const AttentionShape shape{.batch = 1, .heads = 2, .seq_q = 4, .seq_k = 4, .head_dim = 2, .heads_kv = 1};
  std::vector<double> x(16, 0.5), out(16);
  std::vector<RowStats<double>> stats(8);
  try {
    run_forward<double>(impl, shape, Mask::none(), 1.0, x.data(), x.data(), x.data(), out.data(), stats.data());
    FAIL() << "expected a refusal";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("grouped_query"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("naive_plain_only"), std::string::npos) << e.what();
  }
}

TEST(SlicedFeatures, BadFeatureValuesAreRefusedByName) {
  const AttentionShape shape{.batch = 2, .heads = 4, .seq_q = 4, .seq_k = 4, .head_dim = 2};
  std::vector<double> x(64, 0.5), out(64), g(64);
  std::vector<RowStats<double>> stats(32);
  const std::vector<double> slopes{1, 1, std::nan(""), 1}, sinks{0, 0, 0, 0};
  const std::vector<std::int64_t> too_long{4, 5}, negative{-1, 2};
  auto refuses = [&](AttentionShape s, AttentionFeatures f, const std::string& needle, bool backward = false) {
    AttentionOptions o;
    o.features = f;
    try {
      if (backward) {
        attention_backward<double>(Variant::flash, s, Mask::none(), 1.0, x.data(), x.data(), x.data(), out.data(),
                                   stats.data(), x.data(), g.data(), g.data(), g.data(), o);
      } else {
        attention_forward<double>(Variant::naive, s, Mask::none(), 1.0, x.data(), x.data(), x.data(), out.data(),
                                  stats.data(), o);
      }
      ADD_FAILURE() << "expected a refusal naming " << needle;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  AttentionShape s3 = shape;
  s3.heads_kv = 3;
  refuses(s3, {}, "heads_kv = 3");
  refuses(shape, {.alibi_slopes = slopes.data()}, "alibi_slopes[2]");
  refuses(shape, {.softcap = -1}, "softcap = -1");
  refuses(shape, {.dropout_p = 1}, "dropout_p = 1");
  refuses(shape, {.seqlens_q = too_long.data()}, "seqlens_q[1] = 5");
  refuses(shape, {.seqlens_k = negative.data()}, "seqlens_k[0] = -1");
  refuses(shape, {.sinks = sinks.data()}, "dsinks", true);
}

}  // namespace
}  // namespace ped::test
