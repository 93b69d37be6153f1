// Flash attention, FlashAttention-2 style. B batch, H heads, Nq/Nk query/key tokens, d head dim,
// s scale, Bq = tile_q query rows and Bk = tile_k keys per tile (default: tiles_for below).
//
// Forward walks the K/V tiles of each query tile with an online softmax and keeps only the row stats;
// backward recomputes P = exp(s Q K^T - max) * inv_sum tile by tile. Tiles the mask leaves empty are
// skipped, full tiles take no element test. The driver (shared with sparse, which uses smaller square
// blocks) is in variants/tiled_attention.hpp; the per-tile math in variants/tile_ops.hpp.
#include "variants/flash_attention.hpp"

#include <algorithm>
#include <limits>

#include "variants/kernels.hpp"
#include "variants/nonfinite.hpp"
#include "variants/tiled_attention.hpp"

namespace ped {

namespace {

// 256 x 256 float tiles: S and dS take 256 KiB each, K and V tiles at d = 128 another 256 KiB,
// together inside the 2 MiB L2, and GEMMs large enough to run near OpenBLAS's large-matrix speed.
// Measured at N = 4096, d = 64 and 128, causal and not, forward and backward (1 thread, CPU time):
// 256 x 256 was the fastest of 128..512 x 64..512 or within noise of it; 128 x 128 was 7-25% slower.
constexpr std::int64_t kDefaultTileQ = 256;
constexpr std::int64_t kDefaultTileK = 256;

struct Tiles {
  std::int64_t q, k;
};

// Square tile sides tried when the caller sets neither tile, with their speed relative to 256 x 256
// per computed (query, key) pair (measured as above: 128 x 128 about 0.9, 64 x 64 about 0.75). A mask
// that leaves most of each large tile hidden (a sliding window of 256 keys fills half of each
// 256 x 256 tile on its band, two thirds of each 128 x 128 one) runs faster on smaller tiles.
struct TileChoice {
  std::int64_t side;
  double speed;
};
constexpr TileChoice kTileChoices[] = {{kDefaultTileQ, 1.0}, {128, 0.9}, {64, 0.75}};

// The tiles of a call: the caller's (a tile left at 0 takes the default), or when both are 0 the
// choice above with the least estimated time, computed pairs of the non-empty tiles / speed (the
// first of equals). Depends on the mask and the sizes only, never on the threads.
Tiles tiles_for(const Mask& mask, const AttentionShape& shape, const AttentionOptions& o) {
  if (o.tile_q > 0 || o.tile_k > 0) {
    return {o.tile_q > 0 ? o.tile_q : kDefaultTileQ, o.tile_k > 0 ? o.tile_k : kDefaultTileK};
  }
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k;
  Tiles best{kDefaultTileQ, kDefaultTileK};
  double best_cost = std::numeric_limits<double>::infinity();
  for (const TileChoice& choice : kTileChoices) {
    const std::int64_t side = choice.side;
    const BlockLayout layout = mask.block_layout(nq, nk, side, side);
    double pairs = 0.0;
    for (std::int64_t r = 0; r < layout.rows; ++r) {
      const double rows = static_cast<double>(std::min(side, nq - r * side));
      for (std::int64_t e = layout.row_ptr[r]; e < layout.row_ptr[r + 1]; ++e) {
        pairs += rows * static_cast<double>(std::min(side, nk - layout.col_index[e] * side));
      }
    }
    const double cost = pairs / choice.speed;
    if (cost < best_cost) {
      best_cost = cost;
      best = {side, side};
    }
  }
  return best;
}

}  // namespace

template <class T>
void flash_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                             const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options) {
  detail::check_forward_args("flash_attention_forward", shape, mask, scale, q, k, v, out, stats, options);
  const int threads = detail::resolve_threads(options);
  const Tiles tiles = tiles_for(mask, shape, options);
  detail::forward_with_nonfinite(
      shape, mask, q, k, v, out, stats, threads, [&](const T* qf, const T* kf, const T* vf) {
        detail::tiled_attention_forward(shape, mask, scale, qf, kf, vf, out, stats, tiles.q, tiles.k, threads,
                                        options.phases);
      });
}

template <class T>
void flash_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                              const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv,
                              const AttentionOptions& options) {
  detail::check_backward_args("flash_attention_backward", shape, mask, scale, q, k, v, out, stats, dout, dq, dk, dv,
                              options);
  const int threads = detail::resolve_threads(options);
  const Tiles tiles = tiles_for(mask, shape, options);
  detail::backward_with_nonfinite(
      shape, mask, q, k, v, out, stats, dout, dq, dk, dv, threads,
      [&](const T* qf, const T* kf, const T* vf, const T* of, const RowStats<T>* sf, const T* gf) {
        detail::tiled_attention_backward(shape, mask, scale, qf, kf, vf, of, sf, gf, dq, dk, dv, tiles.q, tiles.k,
                                         threads, options.phases);
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
