// Attention with AttentionFeatures (variants/attention.hpp): grouped-query heads, ALiBi, soft-cap,
// per-sequence lengths, dropout and sinks, alone and combined, for every registered implementation
// that declares the features a set uses (AttentionImpl::features: picked up from the bits, never from
// names), against the naive kernel (where it declares them too), the LibTorch twin of plain ops
// (twins/attention_features.hpp) and finite differences.
//
// Carrier layout as op sdpa (verify/ops/sdpa_case.cpp): q (d, B H Nq), k and v (d, B H_kv Nk), out
// (d, B H Nq), lse (1, B H Nq). Sinks, when the set has them, are a differentiable input (1, H) (its
// gradient is the row "dsinks"); ALiBi slopes a non-differentiable input (1, H), seeded in [0.1, 1].
// The rows' shape field names the feature set and its parameters, e.g.
// "B=5 H=4 Hkv=2 Nq=6 Nk=6 d=4 features=alibi+softcap cap=2".
//
// Fixed choices of the sets (each set's masks are listed with it below):
//   - grouped query: H_kv = Dims::Hkv (0: H / 2 for even H, else 1); without the feature H_kv = H;
//   - lengths, per sequence b (b mod 5): (Nq, Nk), (1, 1) a one-token sequence, (0, 0) an empty one,
//     (Nq - 1, Nk - 3) (at least 1 each: under causal some queries see no key), (2, 0) queries without keys;
//   - soft-cap c = 2 at unit inputs; "softcap_saturated": c = 0.5 with q, k scaled by 2 (|scores| ~ 4 >> c);
//   - dropout p = 0.25, seed derived from the problem's seed.
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "twins/attention_features.hpp"
#include "variants/attention.hpp"
#include "variants/registry.hpp"
#include "verify/ops/attention_runner.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

namespace {

constexpr std::uint32_t bit(AttentionFeature f) { return attention_feature_bit(f); }

struct FeatureSet {
  const char* name;
  std::uint32_t bits;
  std::vector<std::string> masks;
  double softcap = 0;
  double input_scale = 1;
};

constexpr std::uint32_t kGqa = bit(AttentionFeature::grouped_query), kAlibi = bit(AttentionFeature::alibi),
                        kSoftcap = bit(AttentionFeature::softcap), kLengths = bit(AttentionFeature::variable_length),
                        kDropout = bit(AttentionFeature::dropout), kSinks = bit(AttentionFeature::sinks);
constexpr double kDropoutP = 0.25;

const std::vector<FeatureSet>& feature_sets() {
  static const std::vector<FeatureSet> sets = {
      {"grouped_query", kGqa, {"none", "causal_sliding_window"}},
      {"variable_length", kLengths, {"none", "causal"}},
      {"alibi", kAlibi, {"none", "causal"}},
      {"softcap", kSoftcap, {"none", "causal"}, 2.0},
      {"softcap_saturated", kSoftcap, {"causal"}, 0.5, 2.0},
      {"dropout", kDropout, {"none", "causal"}},
      {"sinks", kSinks, {"none", "causal"}},
      {"grouped_query+variable_length", kGqa | kLengths, {"causal"}},
      {"all", kAllAttentionFeatures, {"causal"}, 2.0},
  };
  return sets;
}

const FeatureSet& find_set(const std::string& name) {
  for (const FeatureSet& s : feature_sets()) {
    if (name == s.name) return s;
  }
  std::string known;
  for (const FeatureSet& s : feature_sets()) known += (known.empty() ? "" : ", ") + std::string(s.name);
  throw std::invalid_argument("sdpa_features: unknown feature set '" + name + "', expected one of: " + known);
}

// "alibi+softcap": the features a set's bits name, in AttentionFeature order.
std::string feature_names(std::uint32_t bits) {
  std::string out;
  for (std::size_t f = 0; f < kAttentionFeatureCount; ++f) {
    const auto feature = static_cast<AttentionFeature>(f);
    if (!(bits & attention_feature_bit(feature))) continue;
    if (!out.empty()) out += '+';
    out += to_string(feature);
  }
  return out;
}

std::int64_t kv_heads(const FeatureSet& set, const Dims& d) {
  if (!(set.bits & kGqa)) return d.H;
  return d.Hkv > 0 ? d.Hkv : (d.H % 2 == 0 ? d.H / 2 : 1);
}

// Per-sequence lengths (b mod 5, see the top).
void lengths(const Dims& d, std::int64_t nk, std::vector<std::int64_t>& lq, std::vector<std::int64_t>& lk) {
  for (std::int64_t b = 0; b < d.B; ++b) {
    switch (b % 5) {
      case 0: lq.push_back(d.N), lk.push_back(nk); break;
      case 1: lq.push_back(1), lk.push_back(1); break;
      case 2: lq.push_back(0), lk.push_back(0); break;
      case 3: lq.push_back(std::max<std::int64_t>(1, d.N - 1)), lk.push_back(std::max<std::int64_t>(1, nk - 3)); break;
      default: lq.push_back(std::min<std::int64_t>(2, d.N)), lk.push_back(0); break;
    }
  }
}

std::string features_shape(const FeatureSet& set, const Dims& d) {
  const std::int64_t nk = d.Nk > 0 ? d.Nk : d.N;
  std::string s = shape_string({{"B", d.B}, {"H", d.H}, {"Hkv", kv_heads(set, d)}, {"Nq", d.N}, {"Nk", nk}, {"d", d.Dh}}) +
                  " features=" + feature_names(set.bits);
  std::ostringstream params;
  if (set.bits & kSoftcap) params << " cap=" << set.softcap;
  if (set.input_scale != 1) params << " qk_scale=" << set.input_scale;
  if (set.bits & kDropout) params << " p=" << kDropoutP;
  return s + params.str();
}

Problem make_features_problem(const CaseParams& params, std::uint64_t seed) {
  if (params.features.empty()) {
    throw std::invalid_argument("sdpa_features: no feature set given (CaseParams::features), expected one of the op's");
  }
  const FeatureSet& set = find_set(params.features);
  const Dims& d = params.dims;
  const std::int64_t nk = d.Nk > 0 ? d.Nk : d.N, hkv = kv_heads(set, d);
  const std::string shape_text = features_shape(set, d);
  require_sizes(hkv >= 1 && hkv <= d.H && d.H % hkv == 0, "sdpa_features", shape_text, "Hkv dividing H");
  Problem p{.op = "sdpa_features", .variant = params.variant, .shape = shape_text, .mask = params.mask, .seed = seed};
  const AttentionShape shape{
      .batch = d.B, .heads = d.H, .seq_q = d.N, .seq_k = nk, .head_dim = d.Dh, .heads_kv = (set.bits & kGqa) ? hkv : 0};
  const Mask mask = sdpa_family_mask(params.mask, d.N, nk, seed);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d.Dh));
  Rng rng(seed);
  const auto bq = static_cast<arma::uword>(d.B * d.H), bkv = static_cast<arma::uword>(d.B * hkv);
  p.inputs = {{"q", set.input_scale * rng.normal(d.Dh, bq * d.N)},
              {"k", set.input_scale * rng.normal(d.Dh, bkv * nk)},
              {"v", rng.normal(d.Dh, bkv * nk)}};
  AttentionRunner ours{.impl = &attention_impl(params.variant),
                     .shape = shape,
                     .mask = mask,
                     .scale = scale,
                     .bits = set.bits,
                     .softcap = set.softcap,
                     .dropout_p = kDropoutP,
                     .dropout_seed = seed ^ 0xd1b54a32d192ed03ULL,
                     .seqlens_q = {},
                     .seqlens_k = {},
                     .sinks_input = 0,
                     .alibi_input = 0};
  if (set.bits & kSinks) {
    ours.sinks_input = p.inputs.size();
    p.inputs.push_back({"sinks", rng.normal(1, d.H)});
  }
  if (set.bits & kAlibi) {
    ours.alibi_input = p.inputs.size();
    p.inputs.push_back({"alibi_slopes", rng.uniform(1, d.H, 0.1, 1.0), /*differentiable=*/false});
  }
  if (set.bits & kLengths) lengths(d, nk, ours.seqlens_q, ours.seqlens_k);
  if (set.input_scale != 1) {
    p.tolerance_finite_difference_f64 = 1e-5;
    p.tolerance_reason =
        "soft-cap with scores ~4 against a cap of 0.5 (double finite differences 1e-5, LibTorch and naive keep the "
        "default): the five-point stencil's step is eps^(1/5) max|x| ~ 5e-3 here, which moves the tanh's argument s "
        "q.k / c by ~0.03, and the stencil's truncation error grows with the fourth power of that (observed worst "
        "3.0e-7, dk, seeds 1-8, naive and blocked; at scores ~9 it was 8.1e-6); a wrong soft-cap derivative is off "
        "by O(1)";
  }
  p.outputs = {"out", "lse"};
  p.forward_only_outputs = 1;
  p.infinities_allowed = {"lse"};
  set_implementation(p, ours);
  // The naive kernel is the algorithmic reference where it declares the set's features.
  if (attention_impl("naive").supports_features(set.bits)) {
    AttentionRunner naive = ours;
    naive.impl = &attention_impl("naive");
    set_naive_reference(p, naive);
  }
  twin::AttentionFeatureArgs args;
  args.softcap = set.bits & kSoftcap ? set.softcap : 0;
  args.dropout_p = set.bits & kDropout ? kDropoutP : 0;
  args.dropout_seed = ours.dropout_seed;
  args.seqlens_q = ours.seqlens_q;
  args.seqlens_k = ours.seqlens_k;
  p.twin = [shape, mask, scale, args, bits = set.bits, sinks_input = ours.sinks_input,
            alibi_input = ours.alibi_input](const TorchTensors& in) {
    const std::int64_t hkv_ = shape.kv_heads();
    auto as_4d = [&](const at::Tensor& view, std::int64_t heads, std::int64_t n) {
      return view.t().reshape({shape.batch, heads, n, shape.head_dim});
    };
    twin::AttentionFeatureArgs a = args;
    if (bits & kAlibi) {
      const at::Tensor slopes = in[alibi_input].reshape({-1}).to(at::kDouble).contiguous();
      a.alibi_slopes.assign(slopes.data_ptr<double>(), slopes.data_ptr<double>() + slopes.numel());
    }
    const at::Tensor sinks = bits & kSinks ? in[sinks_input].reshape({-1}) : at::Tensor();
    const twin::AttentionTwinResult r =
        twin::attention_with_features(as_4d(in[0], shape.heads, shape.seq_q), as_4d(in[1], hkv_, shape.seq_k),
                                      as_4d(in[2], hkv_, shape.seq_k), sinks, mask, scale, a);
    return TorchTensors{r.out.reshape({-1, shape.head_dim}).t(), r.lse.reshape({1, -1})};
  };
  return p;
}

// A variant x mask x feature set runs when the set lists the mask and the implementation takes the
// mask's kind and declares every feature of the set.
bool runs_features(const CaseParams& cp) {
  const AttentionImpl& impl = attention_impl(cp.variant);
  const std::int64_t nk = cp.dims.Nk > 0 ? cp.dims.Nk : cp.dims.N;
  if (!impl.supports(sdpa_family_mask(cp.mask, cp.dims.N, nk, 1))) return false;
  if (cp.features.empty()) return true;
  const FeatureSet& set = find_set(cp.features);
  return std::find(set.masks.begin(), set.masks.end(), cp.mask) != set.masks.end() &&
         impl.supports_features(set.bits);
}

}  // namespace

std::string sdpa_features_shape(const std::string& feature_set, const Dims& dims) {
  return features_shape(find_set(feature_set), dims);
}

std::uint32_t sdpa_feature_set_bits(const std::string& feature_set) { return find_set(feature_set).bits; }

std::int64_t sdpa_features_kv_heads(const std::string& feature_set, const Dims& dims) {
  return kv_heads(find_set(feature_set), dims);
}

OpCase sdpa_features_case() {
  OpCase c{.name = "sdpa_features",
           .default_shapes = {{.N = 6, .H = 4, .B = 5, .Nk = 6, .Dh = 4, .Hkv = 2},
                              {.N = 5, .H = 3, .B = 3, .Nk = 8, .Dh = 3, .Hkv = 1},
                              {.N = 1, .H = 2, .B = 2, .Nk = 9, .Dh = 4, .Hkv = 2}},
           .variants = attention_impl_names(),
           .masks = {"none", "causal", "causal_sliding_window"},
           .references = {Reference::naive, Reference::libtorch, Reference::finite_difference},
           .runs = runs_features,
           .registry_variants = attention_impl_names};
  c.feature_sets.clear();
  for (const FeatureSet& s : feature_sets()) c.feature_sets.emplace_back(s.name);
  c.feature_bits = [](const std::string& name) { return find_set(name).bits; };
  c.make = make_features_problem;
  return c;
}

}  // namespace ped::verify
