// Block-sparse attention over the mask's block layout with square blocks of options.block_size (default
// 64): only the non-empty blocks of each block row (forward, dQ) or block column (dK, dV) are visited,
// full blocks take no element test, partial blocks apply the element mask.
// B batch, H heads, Nq/Nk query/key tokens, d head dim; layouts as in variants/attention.hpp.
#pragma once

#include "variants/attention.hpp"

namespace ped {

// out (B, H, Nq, d), stats (B, H, Nq) <- attention of q (B, H, Nq, d) over k, v (B, H, Nk, d).
template <class T>
void sparse_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                            const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options = {});

// dq (B, H, Nq, d), dk, dv (B, H, Nk, d) <- gradients of sum(dout o out); overwritten, not accumulated.
template <class T>
void sparse_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                             const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv,
                             const AttentionOptions& options = {});

}  // namespace ped
