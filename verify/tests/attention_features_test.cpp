// Attention features in verify: the LibTorch twin (twins/attention_features.hpp) against tiny cases
// computed by hand, one per feature; op sdpa_features' rows for every registered implementation that
// declares a feature set's bits (and none for one that does not); --features; and teeth: copies with
// a wrong ALiBi sign or a wrong d sinks are caught.
//
// The checked implementations include "verify_test_torch_features": attention computed by the twin
// itself (forward, and backward by autograd) behind the AttentionImpl interface, declaring every
// feature. It is the positive control of the plumbing (options built from the problem's inputs,
// dsinks, lengths, the carrier layout) for features no kernel declares yet, and the base of the
// deliberately wrong copies.
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>

#include "twins/attention_features.hpp"
#include "variants/registry.hpp"
#include "verify/checks.hpp"
#include "verify/ops/op_cases.hpp"
#include "verify/sweep.hpp"

namespace ped::verify {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

at::Tensor t64(std::vector<double> values, at::IntArrayRef sizes) {
  return at::tensor(values, at::kDouble).reshape(sizes).clone();
}

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

// ---- the twin against hand-computed cases ------------------------------------------------------

TEST(AttentionTwin, GroupedQueryHeadsShareKeysAndSumTheirGradients) {
  // H = 2 query heads on H_kv = 1: q_h = h + 1, k = (0, 1), v = (1, 3), d = 1, scale 1. Scores of
  // head h: (0, q_h), so out_h = 1 + 2 sigmoid(q_h); with dout = 1, dk_1 = sum_h 2 sigmoid'(q_h) q_h
  // and dk_0 = -dk_1 (the two scores of a row enter the softmax only through their difference).
  at::Tensor q = t64({1, 2}, {1, 2, 1, 1}).requires_grad_(true);
  at::Tensor k = t64({0, 1}, {1, 1, 2, 1}).requires_grad_(true);
  at::Tensor v = t64({1, 3}, {1, 1, 2, 1}).requires_grad_(true);
  const twin::AttentionTwinResult r = twin::attention_with_features(q, k, v, {}, Mask::none(), 1.0, {});
  EXPECT_NEAR(r.out[0][0][0][0].item<double>(), 1 + 2 * sigmoid(1), 1e-15);
  EXPECT_NEAR(r.out[0][1][0][0].item<double>(), 1 + 2 * sigmoid(2), 1e-15);
  EXPECT_NEAR(r.lse[0][1][0].item<double>(), std::log(1 + std::exp(2.0)), 1e-15);
  const auto grads = torch::autograd::grad({r.out.sum()}, {k, v});
  const auto ds = [](double x) { return sigmoid(x) * (1 - sigmoid(x)); };
  const double dk1 = 2 * ds(1) * 1 + 2 * ds(2) * 2;
  EXPECT_NEAR(grads[0][0][0][1][0].item<double>(), dk1, 1e-14);
  EXPECT_NEAR(grads[0][0][0][0][0].item<double>(), -dk1, 1e-14);
  // dv_j = sum_h P_hj
  EXPECT_NEAR(grads[1][0][0][1][0].item<double>(), sigmoid(1) + sigmoid(2), 1e-14);
}

TEST(AttentionTwin, AlibiAddsMinusSlopeTimesDistance) {
  // Nq = 1, Nk = 3, q = 0 (scores 0): query 0 sits at p = 0 + 3 - 1 = 2, so the biases are
  // -m (2, 1, 0); heads with m = 0.5 and 2.
  const at::Tensor q = at::zeros({1, 2, 1, 1}, at::kDouble), k = at::ones({1, 2, 3, 1}, at::kDouble);
  const at::Tensor v = t64({1, 2, 4, 1, 2, 4}, {1, 2, 3, 1});
  twin::AttentionFeatureArgs f;
  f.alibi_slopes = {0.5, 2.0};
  const twin::AttentionTwinResult r = twin::attention_with_features(q, k, v, {}, Mask::none(), 1.0, f);
  for (int h = 0; h < 2; ++h) {
    const double m = f.alibi_slopes[static_cast<std::size_t>(h)];
    const double e0 = std::exp(-2 * m), e1 = std::exp(-m), e2 = 1, z = e0 + e1 + e2;
    EXPECT_NEAR(r.out[0][h][0][0].item<double>(), (e0 * 1 + e1 * 2 + e2 * 4) / z, 1e-15) << h;
    EXPECT_NEAR(r.lse[0][h][0].item<double>(), std::log(z), 1e-15) << h;
  }
  // The bias tensor itself, non-causal: -m |p - j| on both sides of the diagonal.
  const at::Tensor bias = twin::alibi_bias({0.5}, 2, 2, at::kDouble);
  EXPECT_EQ(bias[0][0][1].item<double>(), -0.5);
  EXPECT_EQ(bias[0][1][0].item<double>(), -0.5);
  EXPECT_EQ(bias[0][1][1].item<double>(), 0.0);
}

TEST(AttentionTwin, SoftcapIsCapTimesTanhOfScoreOverCap) {
  // Nq = 1, Nk = 2, q = 1, k = (0, 10), scale 1, cap 2: S = (0, 2 tanh 5) (a score far above the cap);
  // with dout = 1, dq = P_1 (v_1 - out) (1 - tanh^2 5) k_1.
  at::Tensor q = t64({1}, {1, 1, 1, 1}).requires_grad_(true);
  const at::Tensor k = t64({0, 10}, {1, 1, 2, 1}), v = t64({1, 5}, {1, 1, 2, 1});
  twin::AttentionFeatureArgs f;
  f.softcap = 2;
  const twin::AttentionTwinResult r = twin::attention_with_features(q, k, v, {}, Mask::none(), 1.0, f);
  const double t = std::tanh(5.0), s1 = 2 * t, p1 = std::exp(s1) / (1 + std::exp(s1)), out = (1 - p1) * 1 + p1 * 5;
  EXPECT_NEAR(r.out[0][0][0][0].item<double>(), out, 1e-14);
  EXPECT_NEAR(r.lse[0][0][0].item<double>(), std::log(1 + std::exp(s1)), 1e-14);
  const at::Tensor dq = torch::autograd::grad({r.out.sum()}, {q})[0];
  EXPECT_NEAR(dq.item<double>(), p1 * (5 - out) * (1 - t * t) * 10, 1e-14);
}

TEST(AttentionTwin, TheMaskHidesKeysAndARowWithoutKeysIsZero) {
  // Causal with Nq = 3 > Nk = 2: query i sits at p = i - 1, so row 0 sees no key (out 0, lse -inf),
  // row 1 sees key 0 only (out v_0), row 2 both.
  at::Tensor q = at::zeros({1, 1, 3, 1}, at::kDouble).requires_grad_(true);
  const at::Tensor k = at::zeros({1, 1, 2, 1}, at::kDouble), v = t64({3, 7}, {1, 1, 2, 1});
  const twin::AttentionTwinResult r = twin::attention_with_features(q, k, v, {}, Mask::causal(), 1.0, {});
  EXPECT_EQ(r.out[0][0][0][0].item<double>(), 0.0);
  EXPECT_EQ(r.lse[0][0][0].item<double>(), -kInf);
  EXPECT_NEAR(r.out[0][0][1][0].item<double>(), 3.0, 1e-15);
  EXPECT_NEAR(r.out[0][0][2][0].item<double>(), 5.0, 1e-15);
  EXPECT_NEAR(r.lse[0][0][2].item<double>(), std::log(2.0), 1e-15);
  const at::Tensor dq = torch::autograd::grad({r.out.sum()}, {q})[0];
  EXPECT_TRUE(at::isfinite(dq).all().item<bool>());
}

TEST(AttentionTwin, SinksJoinTheDenominatorAndGetTheirGradient) {
  // One key with score 0 and a sink s: P = 1 / (e^s + 1), out = P v, lse = log(e^s + 1), and with
  // dout = 1, d sink = -P_sink out (P_sink = e^s / (e^s + 1)). A row without a visible key keeps the
  // sink alone: out 0, lse = s.
  at::Tensor sinks = t64({0.7}, {1}).requires_grad_(true);
  const at::Tensor q = at::zeros({1, 1, 1, 1}, at::kDouble), k = at::zeros({1, 1, 1, 1}, at::kDouble);
  const at::Tensor v = t64({3}, {1, 1, 1, 1});
  const twin::AttentionTwinResult r = twin::attention_with_features(q, k, v, sinks, Mask::none(), 1.0, {});
  const double es = std::exp(0.7), p = 1 / (es + 1), ps = es / (es + 1);
  EXPECT_NEAR(r.out.item<double>(), 3 * p, 1e-15);
  EXPECT_NEAR(r.lse.item<double>(), std::log(es + 1), 1e-15);
  EXPECT_NEAR(torch::autograd::grad({r.out.sum()}, {sinks})[0].item<double>(), -ps * 3 * p, 1e-15);
  // Nq = 2 > Nk = 1 under causal: query 0 sees no key.
  const twin::AttentionTwinResult hidden = twin::attention_with_features(
      at::zeros({1, 1, 2, 1}, at::kDouble), k, v, sinks.detach(), Mask::causal(), 1.0, {});
  EXPECT_EQ(hidden.out[0][0][0][0].item<double>(), 0.0);
  EXPECT_NEAR(hidden.lse[0][0][0].item<double>(), 0.7, 1e-15);
}

TEST(AttentionTwin, DropoutKeepsWhatTheSharedHashKeepsScaled) {
  // Nq = 1, Nk = 16, scores 0: P = 1/16 each; out = sum_j keep_j / (1 - p) v_j / 16 with keep_j
  // from ped_dropout_keep (b = 0, h = 1: the second head).
  const double p = 0.25;
  const std::uint64_t seed = 42;
  const at::Tensor q = at::zeros({1, 2, 1, 1}, at::kDouble), k = at::zeros({1, 2, 16, 1}, at::kDouble);
  const at::Tensor v = at::arange(32, at::kDouble).reshape({1, 2, 16, 1});
  twin::AttentionFeatureArgs f;
  f.dropout_p = p;
  f.dropout_seed = seed;
  const twin::AttentionTwinResult r = twin::attention_with_features(q, k, v, {}, Mask::none(), 1.0, f);
  double expected = 0;
  int kept = 0;
  for (int j = 0; j < 16; ++j) {
    if (ped_dropout_keep(seed, 0, 1, 0, j, p)) {
      expected += (16 + j) / (1 - p) / 16;
      ++kept;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, 16);  // this seed drops some: the mask is not all ones
  EXPECT_NEAR(r.out[0][1][0][0].item<double>(), expected, 1e-13);
  // lse describes P before dropout
  EXPECT_NEAR(r.lse[0][1][0].item<double>(), std::log(16.0), 1e-15);
  const at::Tensor z = twin::dropout_scale_mask(seed, 0, 2, 1, 16, p, at::kDouble);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(z[1][0][j].item<double>(), ped_dropout_keep(seed, 0, 1, 0, j, p) ? 1 / (1 - p) : 0.0) << j;
  }
}

TEST(AttentionTwin, LengthsRunEachSequencesOwnRowsAndPaddingIsInert) {
  // B = 3, Nq = 3, Nk = 2, causal: sequence 0 has 2 queries and 1 key, so query i sits at p = i - 1
  // within it (row 0 sees no key, row 1 key 0; row 2 is padding); sequence 1 has one query and one
  // key; sequence 2 is empty. Padding rows: out 0, lse -inf, no gradient.
  at::Tensor q = at::randn({3, 1, 3, 2}, at::kDouble).requires_grad_(true);
  at::Tensor k = at::randn({3, 1, 2, 2}, at::kDouble).requires_grad_(true);
  at::Tensor v = at::randn({3, 1, 2, 2}, at::kDouble).requires_grad_(true);
  twin::AttentionFeatureArgs f;
  f.seqlens_q = {2, 1, 0};
  f.seqlens_k = {1, 1, 0};
  const twin::AttentionTwinResult r = twin::attention_with_features(q, k, v, {}, Mask::causal(), 0.5, f);
  EXPECT_EQ(r.out[0][0][0].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(r.lse[0][0][0].item<double>(), -kInf);
  EXPECT_TRUE(at::allclose(r.out[0][0][1], v[0][0][0]));
  EXPECT_TRUE(at::allclose(r.out[1][0][0], v[1][0][0]));
  EXPECT_EQ(r.out[0][0][2].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(r.out[2].abs().sum().item<double>(), 0.0);
  EXPECT_NEAR(r.lse[0][0][1].item<double>(), 0.5 * (q[0][0][1] * k[0][0][0]).sum().item<double>(), 1e-15);
  EXPECT_EQ(r.lse[0][0][2].item<double>(), -kInf);
  EXPECT_EQ(r.lse[2][0][0].item<double>(), -kInf);
  const auto g = torch::autograd::grad({(r.out * at::randn_like(r.out)).sum()}, {q, k, v});
  EXPECT_EQ(g[0][0][0][2].abs().sum().item<double>(), 0.0);  // padding query
  EXPECT_EQ(g[0][0][0][0].abs().sum().item<double>(), 0.0);  // a query that sees no key
  EXPECT_EQ(g[1][0][0][1].abs().sum().item<double>(), 0.0);  // padding key
  EXPECT_EQ(g[2][0][0][1].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(g[0][2].abs().sum().item<double>() + g[1][2].abs().sum().item<double>(), 0.0);  // the empty sequence
}

TEST(AttentionTwin, RefusesInconsistentSizes) {
  const at::Tensor q = at::zeros({1, 3, 2, 1}, at::kDouble), k = at::zeros({1, 2, 2, 1}, at::kDouble);
  EXPECT_THROW(twin::attention_with_features(q, k, k, {}, Mask::none(), 1.0, {}), std::invalid_argument);  // 2 !| 3
  twin::AttentionFeatureArgs f;
  f.alibi_slopes = {1.0};
  const at::Tensor k3 = at::zeros({1, 3, 2, 1}, at::kDouble);
  EXPECT_THROW(twin::attention_with_features(q, k3, k3, {}, Mask::none(), 1.0, f), std::invalid_argument);
}

// ---- an implementation computed by the twin --------------------------------------------------

struct TorchBugs {
  bool alibi_sign = false;  // applies +slope |p - j|
  bool dsinks = false;      // d sinks with the wrong sign
};

template <class T>
at::ScalarType dtype_of() {
  return std::is_same_v<T, double> ? at::kDouble : at::kFloat;
}

template <class T>
twin::AttentionTwinResult torch_attention(const AttentionShape& s, const Mask& mask, T scale, const T* q, const T* k,
                                          const T* v, const AttentionOptions& o, TorchBugs bugs, bool grad,
                                          std::vector<at::Tensor>& leaves) {
  const AttentionFeatures& f = o.features;
  const std::int64_t hkv = s.kv_heads();
  auto leaf = [&](const T* p, std::int64_t h, std::int64_t n) {
    at::Tensor t = at::from_blob(const_cast<T*>(p), {s.batch, h, n, s.head_dim}, dtype_of<T>()).clone();
    return t.requires_grad_(grad);
  };
  leaves = {leaf(q, s.heads, s.seq_q), leaf(k, hkv, s.seq_k), leaf(v, hkv, s.seq_k)};
  at::Tensor sinks;
  if (f.sinks) {
    sinks = at::tensor(std::vector<double>(f.sinks, f.sinks + s.heads), at::kDouble).to(dtype_of<T>());
    sinks.requires_grad_(grad);
    leaves.push_back(sinks);
  }
  twin::AttentionFeatureArgs a;
  if (f.alibi_slopes) {
    a.alibi_slopes.assign(f.alibi_slopes, f.alibi_slopes + s.heads);
    if (bugs.alibi_sign) {
      for (double& m : a.alibi_slopes) m = -m;
    }
  }
  a.softcap = f.softcap;
  a.dropout_p = f.dropout_p;
  a.dropout_seed = f.dropout_seed;
  if (f.seqlens_q) a.seqlens_q.assign(f.seqlens_q, f.seqlens_q + s.batch);
  else if (f.seqlens_k) a.seqlens_q.assign(static_cast<std::size_t>(s.batch), s.seq_q);
  if (f.seqlens_k) a.seqlens_k.assign(f.seqlens_k, f.seqlens_k + s.batch);
  else if (f.seqlens_q) a.seqlens_k.assign(static_cast<std::size_t>(s.batch), s.seq_k);
  return twin::attention_with_features(leaves[0], leaves[1], leaves[2], sinks, mask, static_cast<double>(scale), a);
}

template <class T>
void copy_out(const at::Tensor& t, T* dst) {
  const at::Tensor c = t.detach().contiguous().to(dtype_of<T>());
  std::memcpy(dst, c.data_ptr<T>(), static_cast<std::size_t>(c.numel()) * sizeof(T));
}

AttentionImpl torch_impl(const std::string& name, TorchBugs bugs, std::uint32_t features = kAllAttentionFeatures) {
  AttentionImpl impl;
  impl.name = name;
  impl.origin = "attention_features_test";
  impl.features = features;
  auto forward = [bugs]<class T>(const AttentionShape& s, const Mask& mask, T scale, const T* q, const T* k, const T* v,
                                 T* out, RowStats<T>* stats, const AttentionOptions& o) {
    std::vector<at::Tensor> leaves;
    const twin::AttentionTwinResult r = torch_attention<T>(s, mask, scale, q, k, v, o, bugs, false, leaves);
    copy_out<T>(r.out, out);
    const at::Tensor lse = r.lse.contiguous().to(at::kDouble);
    for (std::int64_t i = 0; i < lse.numel(); ++i) {
      const double l = lse.data_ptr<double>()[i];
      stats[i] = l == -kInf ? RowStats<T>{} : RowStats<T>{static_cast<T>(l), T{1}};  // lse() = max - log 1
    }
  };
  auto backward = [bugs]<class T>(const AttentionShape& s, const Mask& mask, T scale, const T* q, const T* k,
                                  const T* v, const T*, const RowStats<T>*, const T* dout, T* dq, T* dk, T* dv,
                                  const AttentionOptions& o) {
    std::vector<at::Tensor> leaves;
    const twin::AttentionTwinResult r = torch_attention<T>(s, mask, scale, q, k, v, o, bugs, true, leaves);
    const at::Tensor d = at::from_blob(const_cast<T*>(dout), r.out.sizes(), dtype_of<T>());
    const auto g = torch::autograd::grad({r.out}, leaves, {d}, false, false, /*allow_unused=*/true);
    auto put = [](const at::Tensor& gi, const at::Tensor& like, T* dst) {
      copy_out<T>(gi.defined() ? gi : at::zeros_like(like), dst);
    };
    put(g[0], leaves[0], dq);
    put(g[1], leaves[1], dk);
    put(g[2], leaves[2], dv);
    if (o.features.sinks) {
      const at::Tensor ds = (g[3].defined() ? g[3] : at::zeros_like(leaves[3])).to(at::kDouble).contiguous();
      for (std::int64_t h = 0; h < s.heads; ++h) o.features.dsinks[h] = (bugs.dsinks ? -1 : 1) * ds.data_ptr<double>()[h];
    }
  };
  impl.forward_f32 = [forward](auto&&... a) { forward.template operator()<float>(a...); };
  impl.forward_f64 = [forward](auto&&... a) { forward.template operator()<double>(a...); };
  impl.backward_f32 = [backward](auto&&... a) { backward.template operator()<float>(a...); };
  impl.backward_f64 = [backward](auto&&... a) { backward.template operator()<double>(a...); };
  return impl;
}

const AttentionImpl& registered(const std::string& name, TorchBugs bugs, std::uint32_t features = kAllAttentionFeatures) {
  if (const AttentionImpl* impl = find_attention_impl(name)) return *impl;
  register_attention_impl(torch_impl(name, bugs, features));
  return attention_impl(name);
}

// Every row of op sdpa_features for `variant` (default shapes, seed 1, both dtypes, every reference).
std::vector<CheckRow> feature_rows(const std::string& variant, std::uint32_t features = kAllAttentionFeatures) {
  SweepConfig config;
  config.ops = {"sdpa_features"};
  config.variants = {variant};
  config.seeds = {1};
  config.features = features;
  return run_sweep(config);
}

// "alibi+softcap" of a row's shape field "... features=alibi+softcap cap=2".
std::string row_features(const CheckRow& r) {
  const std::size_t at = r.shape.find("features=");
  if (at == std::string::npos) return "";
  const std::size_t begin = at + 9, end = r.shape.find(' ', begin);
  return r.shape.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

// The features field of a feature set's rows.
std::string set_features(const std::string& set) {
  CheckRow r;
  r.shape = sdpa_features_shape(set, Dims{});
  return row_features(r);
}

TEST(SdpaFeatures, TheTwinBehindTheImplInterfacePassesEveryFeatureSet) {
  registered("verify_test_torch_features", {});
  const std::vector<CheckRow> rows = feature_rows("verify_test_torch_features");
  std::set<std::string> sets, quantities;
  for (const CheckRow& r : rows) {
    EXPECT_TRUE(r.passed) << r.shape << " " << r.mask << " " << r.dtype << " " << r.reference << " " << r.quantity
                          << " " << r.metrics.norm_rel_err << " " << r.detail;
    sets.insert(row_features(r));
    quantities.insert(r.quantity);
  }
  for (const std::string& name : find_op_case("sdpa_features").feature_sets) {
    EXPECT_TRUE(sets.contains(set_features(name))) << name;
  }
  EXPECT_TRUE(quantities.contains("dsinks"));
  EXPECT_FALSE(quantities.contains("dalibi_slopes"));  // slopes are constants
}

TEST(SdpaFeatures, AWrongAlibiSignIsCaught) {
  registered("verify_test_torch_alibi_sign", {.alibi_sign = true});
  bool flagged_torch = false, flagged_fd_consistent = true;
  for (const CheckRow& r : feature_rows("verify_test_torch_alibi_sign", attention_feature_bit(AttentionFeature::alibi))) {
    if (r.quantity == "out" && r.reference == "libtorch") {
      EXPECT_FALSE(r.passed) << r.shape << " " << r.mask << " " << r.dtype << " err=" << r.metrics.norm_rel_err;
      flagged_torch = true;
    }
    // its backward is the exact derivative of its own (wrong) forward
    if (r.reference == "finite_difference") flagged_fd_consistent &= r.passed;
  }
  EXPECT_TRUE(flagged_torch);
  EXPECT_TRUE(flagged_fd_consistent);
}

TEST(SdpaFeatures, AWrongSinksGradientIsCaught) {
  registered("verify_test_torch_dsinks", {.dsinks = true});
  std::map<std::string, int> flagged;  // reference -> dsinks rows failed
  for (const CheckRow& r : feature_rows("verify_test_torch_dsinks", attention_feature_bit(AttentionFeature::sinks))) {
    if (r.quantity == "dsinks") {
      EXPECT_FALSE(r.passed) << r.shape << " " << r.mask << " " << r.dtype << " " << r.reference;
      ++flagged[r.reference];
    } else {
      EXPECT_TRUE(r.passed) << r.quantity << " " << r.reference;
    }
  }
  EXPECT_GT(flagged["libtorch"], 0);
  EXPECT_GT(flagged["finite_difference"], 0);
}

// Copies of the naive kernel with one bug each, as a kernel author could make them: the slopes'
// sign flipped before the call (+slope |p - j|), or d sinks returned with the wrong sign.
AttentionImpl naive_with_bug(const std::string& name, TorchBugs bugs) {
  AttentionImpl impl = attention_impl("naive");
  impl.name = name;
  impl.origin = "attention_features_test";
  auto flipped = [](const AttentionOptions& o, std::vector<double>& slopes, std::int64_t heads) {
    AttentionOptions c = o;
    if (o.features.alibi_slopes) {
      slopes.assign(o.features.alibi_slopes, o.features.alibi_slopes + heads);
      for (double& m : slopes) m = -m;
      c.features.alibi_slopes = slopes.data();
    }
    return c;
  };
  auto wrap_forward = [bugs, flipped](auto base) {
    return [bugs, flipped, base](const AttentionShape& s, const Mask& m, auto scale, auto q, auto k, auto v, auto out,
                                 auto stats, const AttentionOptions& o) {
      std::vector<double> slopes;
      base(s, m, scale, q, k, v, out, stats, bugs.alibi_sign ? flipped(o, slopes, s.heads) : o);
    };
  };
  auto wrap_backward = [bugs, flipped](auto base) {
    return [bugs, flipped, base](const AttentionShape& s, const Mask& m, auto scale, auto q, auto k, auto v, auto out,
                                 auto stats, auto dout, auto dq, auto dk, auto dv, const AttentionOptions& o) {
      std::vector<double> slopes;
      base(s, m, scale, q, k, v, out, stats, dout, dq, dk, dv, bugs.alibi_sign ? flipped(o, slopes, s.heads) : o);
      if (bugs.dsinks && o.features.sinks) {
        for (std::int64_t h = 0; h < s.heads; ++h) o.features.dsinks[h] = -o.features.dsinks[h];
      }
    };
  };
  impl.forward_f32 = wrap_forward(impl.forward_f32);
  impl.forward_f64 = wrap_forward(impl.forward_f64);
  impl.backward_f32 = wrap_backward(impl.backward_f32);
  impl.backward_f64 = wrap_backward(impl.backward_f64);
  return impl;
}

// The same bugs in a copy of a kernel (naive, which declares ALiBi and sinks) are caught against
// LibTorch and naive; the unmodified copy passes (so the failures are the bugs').
TEST(SdpaFeatures, WrongCopiesOfTheNaiveKernelAreCaught) {
  const std::uint32_t alibi = attention_feature_bit(AttentionFeature::alibi);
  const std::uint32_t sinks = attention_feature_bit(AttentionFeature::sinks);
  ASSERT_TRUE(attention_impl("naive").supports_features(alibi | sinks));
  if (!find_attention_impl("verify_test_naive_copy")) {
    register_attention_impl(naive_with_bug("verify_test_naive_copy", {}));
    register_attention_impl(naive_with_bug("verify_test_naive_alibi_sign", {.alibi_sign = true}));
    register_attention_impl(naive_with_bug("verify_test_naive_dsinks", {.dsinks = true}));
  }
  for (const CheckRow& r : feature_rows("verify_test_naive_copy", alibi | sinks)) {
    EXPECT_TRUE(r.passed) << r.shape << " " << r.reference << " " << r.quantity << " " << r.metrics.norm_rel_err;
  }
  std::map<std::string, int> out_failed;
  for (const CheckRow& r : feature_rows("verify_test_naive_alibi_sign", alibi)) {
    if (r.quantity == "out" && r.reference != "finite_difference") {
      EXPECT_FALSE(r.passed) << r.shape << " " << r.mask << " " << r.dtype << " " << r.reference;
      ++out_failed[r.reference];
    }
  }
  EXPECT_GT(out_failed["libtorch"], 0);
  EXPECT_GT(out_failed["naive"], 0);
  std::map<std::string, int> dsinks_failed;
  for (const CheckRow& r : feature_rows("verify_test_naive_dsinks", sinks)) {
    if (r.quantity == "dsinks") {
      EXPECT_FALSE(r.passed) << r.shape << " " << r.mask << " " << r.dtype << " " << r.reference;
      ++dsinks_failed[r.reference];
    } else {
      EXPECT_TRUE(r.passed) << r.quantity << " " << r.reference;
    }
  }
  EXPECT_GT(dsinks_failed["libtorch"], 0);
  EXPECT_GT(dsinks_failed["finite_difference"], 0);
  EXPECT_GT(dsinks_failed["naive"], 0);
}

// The sets an implementation runs follow its feature bits, never its name.
TEST(SdpaFeatures, FeatureSetsFollowTheDeclaredBits) {
  const std::uint32_t alibi = attention_feature_bit(AttentionFeature::alibi);
  registered("verify_test_torch_alibi_only", {}, alibi);
  std::set<std::string> sets;
  for (const CheckRow& r : feature_rows("verify_test_torch_alibi_only")) sets.insert(row_features(r));
  EXPECT_EQ(sets, (std::set<std::string>{"alibi"}));
  const OpCase& c = find_op_case("sdpa_features");
  for (const std::string& set : c.feature_sets) {
    const bool declared = (sdpa_feature_set_bits(set) & ~alibi) == 0;
    EXPECT_EQ(c.runs(CaseParams{Dims{}, "verify_test_torch_alibi_only", "causal", set}), declared) << set;
  }
}

// Every built-in: rows for exactly the sets whose bits it declares, all passing, against naive,
// LibTorch and finite differences; none for the sets it does not declare.
TEST(SdpaFeatures, BuiltinsPassTheSetsTheyDeclare) {
  const OpCase& c = find_op_case("sdpa_features");
  for (const AttentionImpl& builtin : builtin_attention_impls()) {
    std::set<std::string> expected;
    for (const std::string& set : c.feature_sets) {
      if (builtin.supports_features(sdpa_feature_set_bits(set))) expected.insert(set_features(set));
    }
    std::set<std::string> sets, references;
    for (const CheckRow& r : feature_rows(builtin.name)) {
      EXPECT_TRUE(r.passed) << builtin.name << " " << r.shape << " " << r.mask << " " << r.dtype << " "
                            << r.reference << " " << r.quantity << " " << r.metrics.norm_rel_err << " " << r.detail;
      sets.insert(row_features(r));
      references.insert(r.reference);
    }
    EXPECT_EQ(sets, expected) << builtin.name;
    if (!expected.empty()) {  // finite differences check gradients: none without a backward (flash_decode)
      EXPECT_EQ(references.size(), builtin.has_backward<double>() ? 3u : 2u) << builtin.name;
    }
  }
}

TEST(SdpaFeatures, FeatureListParsesAndRefuses) {
  EXPECT_EQ(parse_feature_list("all"), kAllAttentionFeatures);
  EXPECT_EQ(parse_feature_list("none"), 0u);
  EXPECT_EQ(parse_feature_list("alibi,softcap"),
            attention_feature_bit(AttentionFeature::alibi) | attention_feature_bit(AttentionFeature::softcap));
  EXPECT_EQ(feature_list_name(parse_feature_list("sinks,grouped_query")), "grouped_query,sinks");
  for (const char* bad : {"", "alibi,", ",alibi", "alibi,alibi", "rope", "all,alibi", "none,sinks", "ALIBI"}) {
    try {
      parse_feature_list(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("--features"), std::string::npos) << e.what();
    }
  }
  // none: the op has nothing to run, which names --features when the op is asked for
  SweepConfig config;
  config.ops = {"sdpa_features"};
  config.features = 0;
  try {
    plan_sweep(config);
    ADD_FAILURE() << "plan_sweep ran sdpa_features with --features none";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--features 'none'"), std::string::npos) << e.what();
  }
}

TEST(SdpaFeatures, ProblemNamesSayTheFeatureSet) {
  const Dims d{.N = 6, .H = 4, .B = 5, .Nk = 6, .Dh = 4, .Hkv = 2};
  EXPECT_EQ(sdpa_features_shape("grouped_query", d), "B=5 H=4 Hkv=2 Nq=6 Nk=6 d=4 features=grouped_query");
  EXPECT_EQ(sdpa_features_shape("alibi", d), "B=5 H=4 Hkv=4 Nq=6 Nk=6 d=4 features=alibi");
  EXPECT_EQ(sdpa_features_shape("softcap_saturated", d), "B=5 H=4 Hkv=4 Nq=6 Nk=6 d=4 features=softcap cap=0.5 qk_scale=2");
  EXPECT_EQ(sdpa_features_shape("all", d),
            "B=5 H=4 Hkv=2 Nq=6 Nk=6 d=4 features=grouped_query+alibi+softcap+variable_length+dropout+sinks cap=2 p=0.25");
  const Dims bad{.N = 6, .H = 4, .B = 1, .Nk = 6, .Dh = 4, .Hkv = 3};
  EXPECT_THROW(find_op_case("sdpa_features").make(CaseParams{bad, "naive", "none", "grouped_query"}, 1),
               std::invalid_argument);
}

}  // namespace
}  // namespace ped::verify
