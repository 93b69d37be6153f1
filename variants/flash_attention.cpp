// Flash attention, FlashAttention-2 style. B batch, H heads, Nq/Nk query/key tokens, d head dim,
// s scale, Bq = tile_q (default 128) query rows and Bk = tile_k (default 128) keys per tile.
//
// Forward walks the K/V tiles of each query tile with an online softmax and keeps only the row stats;
// backward recomputes P = exp(s Q K^T - max) * inv_sum tile by tile. Tiles the mask leaves empty are
// skipped, full tiles take no element test. The driver (shared with sparse, which uses smaller square
// blocks) is in variants/tiled_attention.hpp; the per-tile math in variants/tile_ops.hpp.
#include "variants/flash_attention.hpp"

#include "variants/kernels.hpp"
#include "variants/nonfinite.hpp"
#include "variants/tiled_attention.hpp"

namespace ped {

namespace {

// 128 x 128 float tiles: S and dS take 64 KiB each, K and V tiles at d = 64 another 64 KiB,
// together well inside the 2 MiB L2 while keeping each GEMM large enough to run near BLAS speed.
constexpr std::int64_t kDefaultTileQ = 128;
constexpr std::int64_t kDefaultTileK = 128;

std::int64_t tile_q(const AttentionOptions& o) { return o.tile_q > 0 ? o.tile_q : kDefaultTileQ; }
std::int64_t tile_k(const AttentionOptions& o) { return o.tile_k > 0 ? o.tile_k : kDefaultTileK; }

}  // namespace

template <class T>
void flash_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                             const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options) {
  detail::check_forward_args("flash_attention_forward", shape, mask, scale, q, k, v, out, stats, options);
  const int threads = detail::resolve_threads(options);
  detail::forward_with_nonfinite(
      shape, mask, q, k, v, out, stats, threads, [&](const T* qf, const T* kf, const T* vf) {
        detail::tiled_attention_forward(shape, mask, scale, qf, kf, vf, out, stats, tile_q(options), tile_k(options),
                                        threads, options.phases);
      });
}

template <class T>
void flash_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                              const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv,
                              const AttentionOptions& options) {
  detail::check_backward_args("flash_attention_backward", shape, mask, scale, q, k, v, out, stats, dout, dq, dk, dv,
                              options);
  const int threads = detail::resolve_threads(options);
  detail::backward_with_nonfinite(
      shape, mask, q, k, v, out, stats, dout, dq, dk, dv, threads,
      [&](const T* qf, const T* kf, const T* vf, const T* of, const RowStats<T>* sf, const T* gf) {
        detail::tiled_attention_backward(shape, mask, scale, qf, kf, vf, of, sf, gf, dq, dk, dv, tile_q(options),
                                         tile_k(options), threads, options.phases);
      });
}

#define PED_INSTANTIATE(T)                                                                                            \
  template void flash_attention_forward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*, T*,   \
                                           RowStats<T>*, const AttentionOptions&);                                    \
  template void flash_attention_backward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*,      \
                                            const T*, const RowStats<T>*, const T*, T*, T*, T*, const AttentionOptions&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped
