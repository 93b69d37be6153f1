// Flash attention (FlashAttention-2 style): Q tiles of tile_q rows walk K/V tiles of tile_k keys
// with an online softmax; only the row stats are kept. Without tiles in the options, square tiles of
// 256, 128 or 64, whichever the mask's block layout makes cheapest (256 unless the mask hides most of
// the larger tiles, as a narrow sliding window does); one given tile, the other 256. The backward
// recomputes P from them tile by tile. Extra memory O(tile_q tile_k) per thread, independent of N.
// Tiles the mask leaves empty are never computed.
// B batch, H heads, Nq/Nk query/key tokens, d head dim; layouts as in variants/attention.hpp.
#pragma once

#include "variants/attention.hpp"

namespace ped {

// out (B, H, Nq, d), stats (B, H, Nq) <- attention of q (B, H, Nq, d) over k, v (B, H, Nk, d).
template <class T>
void flash_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                            const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options = {});

// dq (B, H, Nq, d), dk, dv (B, H, Nk, d) <- gradients of sum(dout o out); overwritten, not accumulated.
template <class T>
void flash_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                             const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv,
                             const AttentionOptions& options = {});

}  // namespace ped
