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
// vectors per thread (in backward one more tile each with dropout and with a soft-cap), plus D
// (B, H, Nq) in backward, the A_i, B_i of the tile rows that hold a dominated row, and the dominant
// entries found.
// Score-level features (ScoreMods, variants/features.hpp; per-tile math in variants/tile_ops.hpp),
// each at the same place of the forward and of the backward's recomputation, so that the backward's
// scores stay bitwise the forward's:
//   - soft-cap: S = c tanh(s q.k / c) on each score tile after its GEMM (tanh_with_grad of
//     variants/kernels.hpp); the backward keeps g = 1 - tanh^2 in a third tile and multiplies dS by it;
//   - ALiBi: S_ij -= slope |i + Nk - Nq - j| after the soft-cap, on every computed tile (full ones
//     too), before the mask of partial tiles;
//   - sinks: each row's online softmax starts at max = sink, sum = 1, so the row stats include the
//     sink (a row without visible keys ends at {sink, 1}, out 0); backward: d sink = -sum_i P_i,sink D_i
//     per slice, its rows in order (so the same for any thread count), P_i,sink = exp(sink - max_i)
//     inv_sum_i;
//   - dropout: the row sums take P before dropout, the value GEMM P o Z / (1 - p) with Z from
//     ped_dropout_keep_at (row key per (slice, row), key index within the slice); backward: a tile
//     of Z / (1 - p) gives dV from P o Z / (1 - p) and dP o Z / (1 - p) before dS = P o (dP - D).
// Dominated rows stay exact with all of them: the sink's probability starts B_i (it is part of
// 1 - P_ij*), dropout's dP keeps D_i = sum_k P_ik dP_ik, and the soft-cap's g multiplies the
// candidate's exact dS (Candidate::factor). With no feature on, the tile math is the plain one: one
// test per tile (per tile row for dropout) and no extra scratch.
// phases: AttentionOptions::phases (null: not timed); the soft-cap and ALiBi count as mask.
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
