// The tiled driver shared by the flash and sparse kernels (internal, not installed).
// B batch, H heads, Nq/Nk query/key tokens, d head dim, s scale; tiles of Bq query rows x Bk keys.
//
// The mask's block layout at (Bq, Bk) is computed once per call, with the non-empty tiles listed per
// tile row and per tile column (CSR): empty tiles are never visited, full tiles take no element test,
// partial tiles apply the element mask. The per-tile math is in variants/tile_ops.hpp.
// Forward: parallel over (b, h, tile row), walking that row's non-empty tiles left to right with an
// online softmax that accumulates straight into the out rows; only lse is kept.
// Backward: D = rowsum(dO o O), then per tile P = exp(s Q K^T - lse) is recomputed and
//   dV += P^T dO, dS = P o (dO V^T - D), dQ += s dS K, dK += s dS^T Q.
// Race-free split without atomics, chosen by the amount of (b, h) parallelism:
//   - one pass per (b, h) (when threads == 1 or B H >= 2 threads): tile columns outer, their
//     non-empty tile rows inner;
//   - otherwise two passes: dK, dV per (b, h, tile column) over its non-empty rows, then dQ per
//     (b, h, tile row) over its non-empty columns (P and dS computed twice).
// Both orders add the same tile products to each gradient row in the same order, so results are
// bitwise identical for any thread count. Extra memory: two (Bq, Bk) tiles and (Bq) vectors per
// thread, plus D (B, H, Nq) in backward.
#pragma once

#include "variants/attention.hpp"

namespace ped::detail {

template <class T>
void tiled_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                             const T* v, T* out, T* lse, std::int64_t tile_q, std::int64_t tile_k, int threads);

template <class T>
void tiled_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                              const T* v, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv,
                              std::int64_t tile_q, std::int64_t tile_k, int threads);

}  // namespace ped::detail
