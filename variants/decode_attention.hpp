// Split-key decoding attention (FlashDecoding): a few queries against a long key/value cache.
// B batch, H heads, H_kv key/value heads, Nq/Nk query/key tokens, d head dim; layouts as in
// variants/attention.hpp. Forward only (inference): no backward.
//
// The keys of each (b, key/value head) are cut into chunks of C keys, C chosen from Nk alone
// (decode_chunk_keys below, or AttentionOptions::tile_k when set), never from the thread count.
// The threads take (b, key/value head, chunk) work items; each computes, for all the query rows of
// its item, the partial state of its chunk: row max m_c, row sum l_c = sum_j exp(S_ij - m_c) and
// unnormalised out o_c = sum_j exp(S_ij - m_c) v_j (key sub-tiles of 128 with an online softmax
// inside the chunk). The partials of a row are then merged in chunk order through their
// log-sum-exp: M = max(M, m_c), L = L exp(M_old - M) + l_c exp(m_c - M), O likewise, with (M, L, O)
// starting at (-inf, 0, 0), or (sink, 1, 0) with an attention sink. Every item's arithmetic and
// the merge order are fixed by the shape, so results are bitwise identical for any thread count.
//
// Grouped-query heads: the H / H_kv query heads of a group are processed together, their query
// rows stacked (up to 128 rows per item): each K/V chunk is read once per group, not once per query
// head, which is what a memory-bound decode step pays for. Per-sequence lengths, ALiBi, soft-cap and
// sinks are implemented (AttentionFeature bits decode_attention_features); dropout is not (a
// training feature). Every Mask: chunks and sub-tiles the mask leaves empty for every row of an
// item are skipped, the rows' visible key intervals mask the others.
//
// Non-finite inputs follow variants/attention.hpp; instead of a separate pass over K and V, each
// item notes a non-finite score or partial out, and only a (b, key/value head) with such a note is
// recomputed on finite copies and marked (variants/nonfinite.hpp).
//
// Working memory: the partial states, (d + 2) values per query row and chunk (at most 64 chunks
// unless tile_k is set), for at most 64 MiB of them at once or one (b, key/value head)'s when that
// is more (a long prefill-sized Nq: up to 64 x its out), plus a (128, 128) score tile per thread.
// AttentionOptions::phases is not filled (no phase timing).
#pragma once

#include <cstdint>

#include "variants/attention.hpp"

namespace ped {

// out (B, H, Nq, d), stats (B, H, Nq) <- attention of q (B, H, Nq, d) over k, v (B, H_kv, Nk, d).
template <class T>
void decode_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                              const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options = {});

// Keys per chunk for Nk keys when AttentionOptions::tile_k is 0: the smallest power of two >= 256
// that cuts Nk into at most 64 chunks (Nk = 4096: 256; Nk = 65536: 1024).
std::int64_t decode_chunk_keys(std::int64_t seq_k);

// The AttentionFeature bits decode_attention_forward implements: grouped_query, variable_length,
// alibi, softcap, sinks.
std::uint32_t decode_attention_features();

}  // namespace ped
