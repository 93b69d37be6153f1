// Flash attention, FlashAttention-2 style. B batch, H heads, Nq/Nk query/key tokens, d head dim,
// s scale, Bq = tile_q query rows and Bk = tile_k keys per tile (default: tiles_for below).
//
// Forward walks the K/V tiles of each query tile with an online softmax and keeps only the row stats;
// backward recomputes P = exp(s Q K^T - max) * inv_sum tile by tile. Tiles the mask leaves empty are
// skipped, full tiles take no element test. The driver (shared with sparse, which uses smaller square
// blocks) is in variants/tiled_attention.hpp; the per-tile math in variants/tile_ops.hpp.
// Features (AttentionFeatures): grouped-query heads and per-sequence lengths by slicing
// (variants/features.hpp); the soft-cap and ALiBi on each score tile before the mask, sinks as the
// starting point of each row's online softmax, dropout on the tile's P after its row sums, all
// recomputed the same way in backward (variants/tiled_attention.hpp says how each one is applied).
#include "variants/flash_attention.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "variants/features.hpp"
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

// (query, key) pairs of the tiles of side x side that hold a visible pair: what the tiled kernels
// compute. Row by row from the mask's intervals, with O(Nk / side) memory (a block layout at the
// smallest side would take O((N / side)^2)).
double computed_pairs(const Mask& mask, std::int64_t nq, std::int64_t nk, std::int64_t side) {
  const std::int64_t cols = (nk + side - 1) / side;
  std::vector<std::uint8_t> hit(static_cast<std::size_t>(cols));
  std::vector<KeyInterval> intervals;
  double pairs = 0.0;
  for (std::int64_t i0 = 0; i0 < nq; i0 += side) {
    const std::int64_t rows = std::min(side, nq - i0);
    std::fill(hit.begin(), hit.end(), std::uint8_t{0});
    for (std::int64_t i = i0; i < i0 + rows; ++i) {
      mask.row_intervals(i, nq, nk, intervals);
      for (const KeyInterval& iv : intervals) {
        for (std::int64_t c = iv.lo / side; c <= (iv.hi - 1) / side; ++c) hit[static_cast<std::size_t>(c)] = 1;
      }
    }
    for (std::int64_t c = 0; c < cols; ++c) {
      if (hit[static_cast<std::size_t>(c)] != 0) pairs += static_cast<double>(rows * std::min(side, nk - c * side));
    }
  }
  return pairs;
}

// The tiles of a call: the caller's (a tile left at 0 takes the default), or when both are 0 the
// choice above with the least estimated time, computed pairs / speed (the first of equals). Depends
// on the mask and the sizes only, never on the threads.
Tiles tiles_for(const Mask& mask, const AttentionShape& shape, const AttentionOptions& o) {
  if (o.tile_q > 0 || o.tile_k > 0) {
    return {o.tile_q > 0 ? o.tile_q : kDefaultTileQ, o.tile_k > 0 ? o.tile_k : kDefaultTileK};
  }
  Tiles best{kDefaultTileQ, kDefaultTileK};
  double best_cost = std::numeric_limits<double>::infinity();
  for (const TileChoice& choice : kTileChoices) {
    const double cost = computed_pairs(mask, shape.seq_q, shape.seq_k, choice.side) / choice.speed;
    if (cost < best_cost) {
      best_cost = cost;
      best = {choice.side, choice.side};
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
  detail::require_features("flash_attention_forward", shape, options.features, kAllAttentionFeatures);
  detail::forward_features(
      "flash_attention_forward", shape, mask, q, k, v, out, stats, options,
      [&](const AttentionShape& slice, const T* sq, const T* sk, const T* sv, T* sout, RowStats<T>* sstats,
          const detail::ScoreMods& mods) {
        detail::forward_with_nonfinite(slice, mask, sq, sk, sv, sout, sstats, threads,
                                       [&](const T* qf, const T* kf, const T* vf) { const Tiles tiles = tiles_for(mask, slice, options); detail::tiled_attention_forward(slice, mask, scale, qf, kf, vf, sout, sstats, tiles.q, tiles.k, threads, options.phases, mods); });
      });
}

template <class T>
void flash_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                              const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv,
                              const AttentionOptions& options) {
  detail::check_backward_args("flash_attention_backward", shape, mask, scale, q, k, v, out, stats, dout, dq, dk, dv,
                              options);
  const int threads = detail::resolve_threads(options);
  detail::require_features("flash_attention_backward", shape, options.features, kAllAttentionFeatures);
  detail::backward_features(
      "flash_attention_backward", shape, mask, q, k, v, out, stats, dout, dq, dk, dv, options,
      [&](const AttentionShape& slice, const T* sq, const T* sk, const T* sv, const T* sout, const RowStats<T>* sstats,
          const T* sdout, T* sdq, T* sdk, T* sdv, const detail::ScoreMods& mods) {
        detail::backward_with_nonfinite(
            slice, mask, sq, sk, sv, sout, sstats, sdout, sdq, sdk, sdv, threads,
            [&](const T* qf, const T* kf, const T* vf, const T* of, const RowStats<T>* sf, const T* gf) { const Tiles tiles = tiles_for(mask, slice, options); detail::tiled_attention_backward(slice, mask, scale, qf, kf, vf, of, sf, gf, sdq, sdk, sdv, tiles.q, tiles.k, threads, options.phases, mods); });
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
