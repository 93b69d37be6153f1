// Naive attention: materialises the (Nq, Nk) scores and probabilities per (b, h), in double.
// The algorithmic reference every other variant is checked against. Memory O(Nq Nk) per thread.
// The backward recomputes P from q and k; out and stats enter only its non-finite checks.
// Implements every AttentionFeature (grouped-query heads, ALiBi, soft-cap, lengths, dropout, sinks).
// B batch, H heads, Nq/Nk query/key tokens, d head dim; layouts as in variants/attention.hpp.
#pragma once

#include "variants/attention.hpp"

namespace ped {

// out (B, H, Nq, d), stats (B, H, Nq) <- attention of q (B, H, Nq, d) over k, v (B, H, Nk, d).
template <class T>
void naive_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                            const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options = {});

// dq (B, H, Nq, d), dk, dv (B, H, Nk, d) <- gradients of sum(dout o out); overwritten, not accumulated.
template <class T>
void naive_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                             const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv,
                             const AttentionOptions& options = {});

}  // namespace ped
