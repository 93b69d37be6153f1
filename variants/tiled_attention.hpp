// The tiled driver shared by the flash and sparse kernels (internal, not installed).
// B batch, H heads, Nq/Nk query/key tokens, d head dim, s scale; tiles of Bq query rows x Bk keys.
//
// The mask's block layout at (Bq, Bk) is computed once per call, with the non-empty tiles listed per
// tile row and per tile column (CSR): empty tiles are never visited, full tiles take no element test,
// partial tiles apply the element mask. The per-tile math is in variants/tile_ops.hpp.
// Forward: parallel over (b, h, tile row), walking that row's non-empty tiles left to right with an
// online softmax that accumulates straight into the out rows; only the row stats are kept.
// Backward: D = rowsum(dO o O), then per tile P = exp(s Q K^T - max) * inv_sum is recomputed and
//   dV += P^T dO, dS = P o (dO V^T - D), dQ += s dS K, dK += s dS^T Q.
// Race-free split without atomics, chosen by the amount of (b, h) parallelism:
//   - one pass per (b, h) (when threads == 1 or B H >= 2 threads): tile columns outer, their
//     non-empty tile rows inner;
//   - otherwise two passes: dQ per (b, h, tile row) over its non-empty columns, then dK, dV per
//     (b, h, tile column) over its non-empty rows (P and dS computed twice).
// Both orders add the same tile products to each gradient row in the same order, so results are
// bitwise identical for any thread count. A slice with a row dominated by one key (inv_sum > 1/2,
// "dominated rows" in variants/kernels.hpp) takes the same order as the others: the tiles of each row
// are still visited left to right, so its sums A_i, B_i are the same in both orders; its dominant
// entries are left out of the tiles' dS and their exact dS is added to dQ and dK apart once the row
// is complete (in the one-pass order, once the slice is). Extra memory: two (Bq, Bk) tiles and (Bq)
// vectors per thread, plus D (B, H, Nq) in backward, the A_i, B_i of the tile rows that hold a
// dominated row, and the dominant entries found.
// phases: AttentionOptions::phases (null: not timed).
#pragma once

#include "variants/attention.hpp"
#include "variants/features.hpp"

namespace ped::detail {

template <class T>
void tiled_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                             const T* v, T* out, RowStats<T>* stats, std::int64_t tile_q, std::int64_t tile_k,
                             int threads, PhaseTimes* phases, const ScoreMods& mods);

template <class T>
void tiled_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                              const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv,
                              std::int64_t tile_q, std::int64_t tile_k, int threads, PhaseTimes* phases,
                              const ScoreMods& mods);

}  // namespace ped::detail
