// Non-finite inputs (internal, not installed): every output that depends on a NaN or an infinity
// among the inputs is NaN, and only those (semantics in variants/attention.hpp).
// B batch, H heads, Nq/Nk query/key tokens, d head dim.
//
// The kernels cannot give that by themselves: their GEMMs multiply the exact zeros of hidden pairs
// (P = 0, dS = 0) by whatever the hidden key or row holds, and 0 * NaN = NaN, so a NaN would leak
// into whole tiles. Instead every call first checks its inputs (one pass over q, k, v, and out,
// stats, dout in backward, much cheaper than the O(Nq Nk d) work). When all are finite the kernel
// runs as is. Otherwise it runs on copies with the non-finite values set to 0 (which changes no
// output that does not depend on them), and the outputs that do are then set to NaN from the mask's
// visible pairs.
#pragma once

#include <cstdint>
#include <vector>

#include "variants/attention.hpp"

namespace ped::detail {

// True when every element of x[0, n) is finite.
template <class T>
bool all_finite(const T* x, std::int64_t n, int threads);

// True when every row's stats are finite, or {-inf, 0} (a row that sees no key).
template <class T>
bool stats_finite(const RowStats<T>* stats, std::int64_t n);

// x with every non-finite element set to 0.
template <class T>
std::vector<T> finite_copy(const T* x, std::int64_t n);

// out and stats <- NaN where they depend on a non-finite q, k or v.
template <class T>
void mark_forward(const AttentionShape& shape, const Mask& mask, const T* q, const T* k, const T* v, T* out,
                  RowStats<T>* stats);

// dq, dk, dv <- NaN where they depend on a non-finite q, k, v, out, stats or dout.
template <class T>
void mark_backward(const AttentionShape& shape, const Mask& mask, const T* q, const T* k, const T* v, const T* out,
                   const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv);

// With sinks: dsinks[x] <- NaN for each slice x (B H of shape) whose d sink = -sum_i P_i,sink D_i
// depends on a non-finite input: per row i, P_i,sink on stats_i and, when the row sees a key, on
// q_i and its visible k_j; D_i = dout_i . out_i on dout_i and out_i. A no-op when all are finite.
template <class T>
void mark_dsinks(const AttentionShape& shape, const Mask& mask, const T* q, const T* k, const T* out,
                 const RowStats<T>* stats, const T* dout, double* dsinks, int threads);

// Runs kernel(q, k, v), which writes out and stats, under the non-finite semantics.
template <class T, class Kernel>
void forward_with_nonfinite(const AttentionShape& shape, const Mask& mask, const T* q, const T* k, const T* v, T* out,
                            RowStats<T>* stats, int threads, Kernel&& kernel) {
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t nq = bh * shape.seq_q * shape.head_dim, nk = bh * shape.seq_k * shape.head_dim;
  if (all_finite(q, nq, threads) && all_finite(k, nk, threads) && all_finite(v, nk, threads)) {
    kernel(q, k, v);
    return;
  }
  const std::vector<T> qc = finite_copy(q, nq), kc = finite_copy(k, nk), vc = finite_copy(v, nk);
  kernel(qc.data(), kc.data(), vc.data());
  mark_forward(shape, mask, q, k, v, out, stats);
}

// Runs kernel(q, k, v, out, stats, dout), which writes dq, dk, dv, under the non-finite semantics.
// A row whose stats are not finite is handed to the kernel as a row without keys ({-inf, 0}).
template <class T, class Kernel>
void backward_with_nonfinite(const AttentionShape& shape, const Mask& mask, const T* q, const T* k, const T* v,
                             const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv, int threads,
                             Kernel&& kernel) {
  const std::int64_t bh = shape.batch * shape.heads, rows = bh * shape.seq_q;
  const std::int64_t nq = rows * shape.head_dim, nk = bh * shape.seq_k * shape.head_dim;
  if (all_finite(q, nq, threads) && all_finite(k, nk, threads) && all_finite(v, nk, threads) &&
      all_finite(out, nq, threads) && all_finite(dout, nq, threads) && stats_finite(stats, rows)) {
    kernel(q, k, v, out, stats, dout);
    return;
  }
  const std::vector<T> qc = finite_copy(q, nq), kc = finite_copy(k, nk), vc = finite_copy(v, nk);
  const std::vector<T> oc = finite_copy(out, nq), gc = finite_copy(dout, nq);
  std::vector<RowStats<T>> sc(stats, stats + rows);
  for (RowStats<T>& s : sc) {
    if (!stats_finite(&s, 1)) s = RowStats<T>{};
  }
  kernel(qc.data(), kc.data(), vc.data(), oc.data(), sc.data(), gc.data());
  mark_backward(shape, mask, q, k, v, out, stats, dout, dq, dk, dv);
}

}  // namespace ped::detail
