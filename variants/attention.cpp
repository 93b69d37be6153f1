// Dispatch of attention_forward / attention_backward to the variants, and the argument checks
// every variant shares. B batch, H heads, Nq/Nk query/key tokens, d head dim.
#include "variants/attention.hpp"

#include <cmath>
#include <limits>

#include "variants/blocked_attention.hpp"
#include "variants/features.hpp"
#include "variants/flash_attention.hpp"
#include "variants/kernels.hpp"
#include "variants/naive_attention.hpp"
#include "variants/sparse_attention.hpp"

namespace ped {

const char* to_string(Variant v) {
  switch (v) {
    case Variant::naive: return "naive";
    case Variant::blocked: return "blocked";
    case Variant::flash: return "flash";
    case Variant::sparse: return "sparse";
  }
  return "unknown";
}

const char* to_string(AttentionPhase phase) {
  switch (phase) {
    case AttentionPhase::score_gemm: return "score_gemm";
    case AttentionPhase::mask: return "mask";
    case AttentionPhase::softmax: return "softmax";
    case AttentionPhase::value_gemm: return "value_gemm";
    case AttentionPhase::dv_gemm: return "dv_gemm";
    case AttentionPhase::dp_gemm: return "dp_gemm";
    case AttentionPhase::softmax_grad: return "softmax_grad";
    case AttentionPhase::dq_gemm: return "dq_gemm";
    case AttentionPhase::dk_gemm: return "dk_gemm";
    case AttentionPhase::dominated: return "dominated";
  }
  return "unknown";
}

const char* to_string(AttentionFeature f) {
  switch (f) {
    case AttentionFeature::grouped_query: return "grouped_query";
    case AttentionFeature::alibi: return "alibi";
    case AttentionFeature::softcap: return "softcap";
    case AttentionFeature::variable_length: return "variable_length";
    case AttentionFeature::dropout: return "dropout";
    case AttentionFeature::sinks: return "sinks";
  }
  return "unknown";
}

AttentionFeature parse_attention_feature(const std::string& name) {
  std::string known;
  for (std::size_t i = 0; i < kAttentionFeatureCount; ++i) {
    const auto f = static_cast<AttentionFeature>(i);
    if (name == to_string(f)) return f;
    known += (i == 0 ? "" : ", ");
    known += to_string(f);
  }
  detail::throw_invalid("parse_attention_feature", "unknown feature '", name, "', expected one of ", known);
}

std::uint32_t AttentionFeatures::used(const AttentionShape& shape) const {
  std::uint32_t bits = 0;
  if (shape.kv_heads() != shape.heads) bits |= attention_feature_bit(AttentionFeature::grouped_query);
  if (alibi_slopes != nullptr) bits |= attention_feature_bit(AttentionFeature::alibi);
  if (softcap != 0) bits |= attention_feature_bit(AttentionFeature::softcap);
  if (seqlens_q != nullptr || seqlens_k != nullptr) bits |= attention_feature_bit(AttentionFeature::variable_length);
  if (dropout_p != 0) bits |= attention_feature_bit(AttentionFeature::dropout);
  if (sinks != nullptr) bits |= attention_feature_bit(AttentionFeature::sinks);
  return bits;
}

Variant parse_variant(const std::string& name) {
  for (Variant v : {Variant::naive, Variant::blocked, Variant::flash, Variant::sparse}) {
    if (name == to_string(v)) return v;
  }
  detail::throw_invalid("parse_variant", "unknown variant '", name, "', expected naive, blocked, flash or sparse");
}

namespace detail {

namespace {

constexpr std::int64_t kMaxSeq = std::numeric_limits<int>::max();  // BLAS takes int dimensions
constexpr std::int64_t kMaxTile = 4096;
constexpr int kMaxThreads = 1024;

void check_dim(const char* fn, const char* name, std::int64_t value, std::int64_t hi) {
  if (value < 1 || value > hi) throw_invalid(fn, "shape.", name, " = ", value, ", expected in [1, ", hi, "]");
}

// Elements of a (B, H, N, d) tensor, or an exception when B H N d or its byte size overflows.
template <class T>
std::int64_t checked_elems(const char* fn, const AttentionShape& s, std::int64_t n, std::int64_t d,
                           const char* what) {
  std::int64_t e = 0;
  if (__builtin_mul_overflow(s.batch, s.heads, &e) || __builtin_mul_overflow(e, n, &e) ||
      __builtin_mul_overflow(e, d, &e) ||
      e > std::numeric_limits<std::int64_t>::max() / static_cast<std::int64_t>(sizeof(T))) {
    throw_invalid(fn, what, " size batch * heads * ", n, " * ", d, " overflows: batch = ", s.batch,
                  ", heads = ", s.heads);
  }
  return e;
}

template <class T>
void check_common(const char* fn, const AttentionShape& shape, const Mask& mask, T scale,
                  const AttentionOptions& o, bool backward) {
  check_dim(fn, "batch", shape.batch, std::numeric_limits<std::int64_t>::max());
  check_dim(fn, "heads", shape.heads, std::numeric_limits<std::int64_t>::max());
  check_dim(fn, "seq_q", shape.seq_q, kMaxSeq);
  check_dim(fn, "seq_k", shape.seq_k, kMaxSeq);
  check_dim(fn, "head_dim", shape.head_dim, kMaxSeq);
  checked_elems<T>(fn, shape, shape.seq_q, shape.head_dim, "q/out");
  checked_elems<T>(fn, shape, shape.seq_k, shape.head_dim, "k/v");
  checked_elems<RowStats<T>>(fn, shape, shape.seq_q, 1, "stats");
  if (!std::isfinite(scale)) throw_invalid(fn, "scale = ", scale, " is not finite");
  if (o.threads < 0 || o.threads > kMaxThreads) {
    throw_invalid(fn, "options.threads = ", o.threads, ", expected in [0, ", kMaxThreads, "] (0 = OpenMP default)");
  }
  if (o.tile_q < 0 || o.tile_q > kMaxTile) {
    throw_invalid(fn, "options.tile_q = ", o.tile_q, ", expected in [0, ", kMaxTile, "] (0 = variant default)");
  }
  if (o.tile_k < 0 || o.tile_k > kMaxTile) {
    throw_invalid(fn, "options.tile_k = ", o.tile_k, ", expected in [0, ", kMaxTile, "] (0 = variant default)");
  }
  if (o.block_size < 1 || o.block_size > kMaxTile) {
    throw_invalid(fn, "options.block_size = ", o.block_size, ", expected in [1, ", kMaxTile, "]");
  }
  check_features(fn, shape, o.features, backward);
  // With per-sequence lengths the mask applies to each sequence's own lengths (checked per sequence).
  if (o.features.seqlens_q == nullptr && o.features.seqlens_k == nullptr) mask.validate(fn, shape.seq_q, shape.seq_k);
}

void check_pointer(const char* fn, const char* name, const void* p) {
  if (p == nullptr) throw_invalid(fn, name, " is a null pointer");
}

template <class T>
void check_args(const char* fn, const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                const T* v, const T* out, const RowStats<T>* stats, const AttentionOptions& options, bool backward) {
  check_pointer(fn, "q", q);
  check_pointer(fn, "k", k);
  check_pointer(fn, "v", v);
  check_pointer(fn, "out", out);
  check_pointer(fn, "stats", stats);
  check_common(fn, shape, mask, scale, options, backward);
}

}  // namespace

void check_features(const char* fn, const AttentionShape& shape, const AttentionFeatures& f, bool backward) {
  if (shape.heads_kv < 0 || shape.heads_kv > shape.heads || shape.heads % shape.kv_heads() != 0) {
    throw_invalid(fn, "shape.heads_kv = ", shape.heads_kv, " with heads = ", shape.heads,
                  ", expected 0 (= heads) or a divisor of heads");
  }
  for (std::int64_t h = 0; f.alibi_slopes != nullptr && h < shape.heads; ++h) {
    if (!std::isfinite(f.alibi_slopes[h])) {
      throw_invalid(fn, "features.alibi_slopes[", h, "] = ", f.alibi_slopes[h], " is not finite");
    }
  }
  for (std::int64_t h = 0; f.sinks != nullptr && h < shape.heads; ++h) {
    if (!std::isfinite(f.sinks[h])) throw_invalid(fn, "features.sinks[", h, "] = ", f.sinks[h], " is not finite");
  }
  if (!(f.softcap == 0 || (f.softcap > 0 && std::isfinite(f.softcap)))) {
    throw_invalid(fn, "features.softcap = ", f.softcap, ", expected 0 (off) or a finite value > 0");
  }
  if (!(f.dropout_p >= 0 && f.dropout_p < 1)) {
    throw_invalid(fn, "features.dropout_p = ", f.dropout_p, ", expected in [0, 1)");
  }
  if (backward && f.sinks != nullptr && f.dsinks == nullptr) {
    throw_invalid(fn, "features.sinks is set but features.dsinks is a null pointer (the backward writes the sinks' gradient)");
  }
  for (std::int64_t b = 0; b < shape.batch; ++b) {
    if (f.seqlens_q != nullptr && (f.seqlens_q[b] < 0 || f.seqlens_q[b] > shape.seq_q)) {
      throw_invalid(fn, "features.seqlens_q[", b, "] = ", f.seqlens_q[b], ", expected in [0, seq_q = ", shape.seq_q, "]");
    }
    if (f.seqlens_k != nullptr && (f.seqlens_k[b] < 0 || f.seqlens_k[b] > shape.seq_k)) {
      throw_invalid(fn, "features.seqlens_k[", b, "] = ", f.seqlens_k[b], ", expected in [0, seq_k = ", shape.seq_k, "]");
    }
  }
}

void require_features(const char* fn, const AttentionShape& shape, const AttentionFeatures& features,
                      std::uint32_t supported) {
  const std::uint32_t missing = features.used(shape) & ~supported;
  if (missing == 0) return;
  for (std::size_t i = 0; i < kAttentionFeatureCount; ++i) {
    const auto f = static_cast<AttentionFeature>(i);
    if ((missing & attention_feature_bit(f)) != 0) {
      throw_invalid(fn, "the call uses the attention feature '", to_string(f), "', which this implementation does not support");
    }
  }
}

template <class T>
void check_forward_args(const char* fn, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                        const T* k, const T* v, const T* out, const RowStats<T>* stats,
                        const AttentionOptions& options) {
  check_args(fn, shape, mask, scale, q, k, v, out, stats, options, false);
}

template <class T>
void check_backward_args(const char* fn, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                         const T* k, const T* v, const T* out, const RowStats<T>* stats, const T* dout, const T* dq,
                         const T* dk, const T* dv, const AttentionOptions& options) {
  check_pointer(fn, "dout", dout);
  check_pointer(fn, "dq", dq);
  check_pointer(fn, "dk", dk);
  check_pointer(fn, "dv", dv);
  check_args(fn, shape, mask, scale, q, k, v, out, stats, options, true);
}

#define PED_INSTANTIATE_CHECKS(T)                                                                                \
  template void check_forward_args<T>(const char*, const AttentionShape&, const Mask&, T, const T*, const T*,    \
                                      const T*, const T*, const RowStats<T>*, const AttentionOptions&);          \
  template void check_backward_args<T>(const char*, const AttentionShape&, const Mask&, T, const T*, const T*,   \
                                       const T*, const T*, const RowStats<T>*, const T*, const T*, const T*,     \
                                       const T*, const AttentionOptions&);
PED_INSTANTIATE_CHECKS(float)
PED_INSTANTIATE_CHECKS(double)
#undef PED_INSTANTIATE_CHECKS

}  // namespace detail

template <class T>
void attention_forward(Variant variant, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                       const T* k, const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options) {
  constexpr const char* fn = "attention_forward";
  detail::check_forward_args(fn, shape, mask, scale, q, k, v, out, stats, options);
  switch (variant) {
    case Variant::naive: return naive_attention_forward(shape, mask, scale, q, k, v, out, stats, options);
    case Variant::blocked: return blocked_attention_forward(shape, mask, scale, q, k, v, out, stats, options);
    case Variant::flash: return flash_attention_forward(shape, mask, scale, q, k, v, out, stats, options);
    case Variant::sparse: return sparse_attention_forward(shape, mask, scale, q, k, v, out, stats, options);
  }
  detail::throw_invalid(fn, "variant = ", static_cast<int>(variant), " is not a Variant");
}

template <class T>
void attention_backward(Variant variant, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                        const T* k, const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk,
                        T* dv, const AttentionOptions& options) {
  constexpr const char* fn = "attention_backward";
  detail::check_backward_args(fn, shape, mask, scale, q, k, v, out, stats, dout, dq, dk, dv, options);
  switch (variant) {
    case Variant::naive:
      return naive_attention_backward(shape, mask, scale, q, k, v, out, stats, dout, dq, dk, dv, options);
    case Variant::blocked:
      return blocked_attention_backward(shape, mask, scale, q, k, v, out, stats, dout, dq, dk, dv, options);
    case Variant::flash:
      return flash_attention_backward(shape, mask, scale, q, k, v, out, stats, dout, dq, dk, dv, options);
    case Variant::sparse:
      return sparse_attention_backward(shape, mask, scale, q, k, v, out, stats, dout, dq, dk, dv, options);
  }
  detail::throw_invalid(fn, "variant = ", static_cast<int>(variant), " is not a Variant");
}

template <class T>
void lse_from_stats(std::int64_t rows, const RowStats<T>* stats, T* lse) {
  if (rows < 0) detail::throw_invalid("lse_from_stats", "rows = ", rows, ", expected >= 0");
  if (rows > 0 && stats == nullptr) detail::throw_invalid("lse_from_stats", "stats is a null pointer");
  if (rows > 0 && lse == nullptr) detail::throw_invalid("lse_from_stats", "lse is a null pointer");
  for (std::int64_t i = 0; i < rows; ++i) lse[i] = stats[i].lse();
}

template void attention_forward<float>(Variant, const AttentionShape&, const Mask&, float, const float*, const float*,
                                       const float*, float*, RowStats<float>*, const AttentionOptions&);
template void attention_forward<double>(Variant, const AttentionShape&, const Mask&, double, const double*,
                                        const double*, const double*, double*, RowStats<double>*,
                                        const AttentionOptions&);
template void attention_backward<float>(Variant, const AttentionShape&, const Mask&, float, const float*,
                                        const float*, const float*, const float*, const RowStats<float>*,
                                        const float*, float*, float*, float*, const AttentionOptions&);
template void attention_backward<double>(Variant, const AttentionShape&, const Mask&, double, const double*,
                                         const double*, const double*, const double*, const RowStats<double>*,
                                         const double*, double*, double*, double*, const AttentionOptions&);
template void lse_from_stats<float>(std::int64_t, const RowStats<float>*, float*);
template void lse_from_stats<double>(std::int64_t, const RowStats<double>*, double*);

}  // namespace ped
