// The built-in attention implementations, one registration line each (see registry.hpp).
// B batch, H heads, Nq/Nk query/key tokens, d head dim, T threads, e bytes per element.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "variants/blocked_attention.hpp"
#include "variants/decode_attention.hpp"
#include "variants/features.hpp"
#include "variants/flash_attention.hpp"
#include "variants/naive_attention.hpp"
#include "variants/registry.hpp"
#include "variants/sparse_attention.hpp"

namespace ped {

namespace {

// The kernels' own signatures (flash_attention.hpp), with the row statistics in their in-tree form.
template <class T>
using Forward = void (*)(const AttentionShape&, const Mask&, T, const T*, const T*, const T*, T*, RowStatistic<T>*,
                         const AttentionOptions&);
template <class T>
using Backward = void (*)(const AttentionShape&, const Mask&, T, const T*, const T*, const T*, const T*,
                          const RowStatistic<T>*, const T*, T*, T*, T*, const AttentionOptions&);
using WorkingBytes = double (*)(const AttentionShape&, std::size_t, int, bool);

AttentionImpl kernel(const char* name, Forward<float> forward_f32, Forward<double> forward_f64,
                     Backward<float> backward_f32, Backward<double> backward_f64, WorkingBytes working_bytes,
                     bool times_phases, std::uint32_t features = detail::kSlicedFeatures) {
  return {.name = name,
          .features = features,
          .forward_f32 = forward_f32,
          .forward_f64 = forward_f64,
          .backward_f32 = backward_f32,
          .backward_f64 = backward_f64,
          .working_bytes = working_bytes,
          .times_phases = times_phases};
}

// A forward-only kernel (inference) with the features it declares.
AttentionImpl forward_only(const char* name, Forward<float> forward_f32, Forward<double> forward_f64,
                           std::uint32_t features, WorkingBytes working_bytes) {
  return {.name = name,
          .features = features,
          .forward_f32 = forward_f32,
          .forward_f64 = forward_f64,
          .working_bytes = working_bytes};
}

double query_rows(const AttentionShape& s) {
  return static_cast<double>(s.batch) * static_cast<double>(s.heads) * static_cast<double>(s.seq_q);
}

// Working-memory estimates, deliberately on the high side (bench skips what exceeds its budget).
// naive: P (Nq, Nk) in double, plus dS (Nq, Nk) in backward, one (b, h) at a time.
double naive_bytes(const AttentionShape& s, std::size_t, int, bool backward) {
  return (backward ? 16.0 : 8.0) * static_cast<double>(s.seq_q) * static_cast<double>(s.seq_k);
}
// blocked: per thread up to three (256, Nk) score strips, plus one value per query row.
double blocked_bytes(const AttentionShape& s, std::size_t e, int threads, bool) {
  return threads * 256.0 * static_cast<double>(s.seq_k) * 3.0 * static_cast<double>(e) +
         query_rows(s) * static_cast<double>(e);
}
// flash, sparse: per thread four 256 x 256 double tiles, one value per query row, and the 64 x 64
// block layout (24 bytes per block).
double tiled_bytes(const AttentionShape& s, std::size_t e, int threads, bool) {
  const double blocks = std::ceil(static_cast<double>(s.seq_q) / 64.0) * std::ceil(static_cast<double>(s.seq_k) / 64.0);
  return threads * 4.0 * 256.0 * 256.0 * sizeof(double) + query_rows(s) * static_cast<double>(e) + blocks * 24.0;
}

// flash_decode: the chunks' partial states (m, l and d values per query row and chunk), held for at
// most 64 MiB of them at once or one (b, key/value head) group's, plus the packed query rows and a
// 128 x 128 score tile per thread.
double decode_bytes(const AttentionShape& s, std::size_t e, int threads, bool) {
  const double chunks = std::ceil(static_cast<double>(s.seq_k) / static_cast<double>(decode_chunk_keys(s.seq_k)));
  const double per_row = chunks * (static_cast<double>(e) * static_cast<double>(s.head_dim + 1) + 8.0);
  const double group_rows = static_cast<double>(s.heads / s.kv_heads()) * static_cast<double>(s.seq_q);
  const double partials = std::min(query_rows(s) * per_row, std::max(64.0 * 1024 * 1024, group_rows * per_row));
  return partials + query_rows(s) * static_cast<double>(s.head_dim * e) + threads * 128.0 * 128.0 * static_cast<double>(e);
}

}  // namespace

std::vector<AttentionImpl> builtin_attention_impls() {
  // naive: one (Nq, Nk) matrix in double per (b, h), no tiling: about 10x the tiled kernels' time per FLOP.
  AttentionImpl naive = kernel("naive", naive_attention_forward<float>, naive_attention_forward<double>,
                               naive_attention_backward<float>, naive_attention_backward<double>, naive_bytes, false,
                               kAllAttentionFeatures);
  naive.relative_cost = 10.0;
  return {
      std::move(naive),
      kernel("blocked", blocked_attention_forward<float>, blocked_attention_forward<double>,
             blocked_attention_backward<float>, blocked_attention_backward<double>, blocked_bytes, true,
             kAllAttentionFeatures),
      kernel("flash", flash_attention_forward<float>, flash_attention_forward<double>,
             flash_attention_backward<float>, flash_attention_backward<double>, tiled_bytes, true,
             kAllAttentionFeatures),
      kernel("sparse", sparse_attention_forward<float>, sparse_attention_forward<double>,
             sparse_attention_backward<float>, sparse_attention_backward<double>, tiled_bytes, true,
             kAllAttentionFeatures),
      forward_only("flash_decode", decode_attention_forward<float>, decode_attention_forward<double>,
                   decode_attention_features(), decode_bytes),
  };
}

}  // namespace ped
