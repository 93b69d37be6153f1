// Blocked attention: query strips of tile_q rows (default 64); a strip's scores (tile_q, Nk) come from
// one BLAS GEMM and are softmaxed exactly. Memory O(tile_q Nk) per thread. The backward walks query
// strips for dQ and key strips for dK, dV, so no two threads write the same rows.
// Implements every AttentionFeature (grouped-query heads, ALiBi, soft-cap, lengths, dropout, sinks).
// B batch, H heads, Nq/Nk query/key tokens, d head dim; layouts as in variants/attention.hpp.
#pragma once

#include "variants/attention.hpp"

namespace ped {

// out (B, H, Nq, d), stats (B, H, Nq) <- attention of q (B, H, Nq, d) over k, v (B, H, Nk, d).
template <class T>
void blocked_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                            const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options = {});

// dq (B, H, Nq, d), dk, dv (B, H, Nk, d) <- gradients of sum(dout o out); overwritten, not accumulated.
template <class T>
void blocked_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                             const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv,
                             const AttentionOptions& options = {});

}  // namespace ped
