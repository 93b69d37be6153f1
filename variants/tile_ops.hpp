// One (query tile, key tile) step of the tiled attention kernels, shared by flash and sparse
// (internal, not installed). B batch, H heads, Nq/Nk query/key tokens, d head dim, s scale;
// a tile is rows queries i0 .. i0 + rows by cols keys j0 .. j0 + cols. All buffers row-major:
//   qi, doi (rows, d)   kj, vj (cols, d)   s, ds scratch (rows, cols)   acc (rows, d)
//   m (rows) running max, l (rows) running sum, lse_i, d_i (rows)
#pragma once

#include <limits>

#include "variants/kernels.hpp"

namespace ped::detail {

// Geometry of one tile: the element mask is applied only when kind == partial.
struct Tile {
  std::int64_t i0, rows, j0, cols;
  BlockKind kind;
};

// Online softmax step (FlashAttention-2):
//   S = s Q_i K_j^T (+ mask);  m_new = max(m, rowmax(S));  P = exp(S - m_new)
//   l <- l exp(m - m_new) + rowsum(P);  acc <- acc exp(m - m_new) + P V_j;  m <- m_new
template <class T>
void forward_tile(const Mask& mask, const Tile& t, std::int64_t nq, std::int64_t nk, std::int64_t d, T scale,
                  const T* qi, const T* kj, const T* vj, T* s, T* m, double* l, T* acc) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  const int ir = static_cast<int>(t.rows), ic = static_cast<int>(t.cols), id = static_cast<int>(d);
  gemm_nt(ir, ic, id, scale, qi, id, kj, id, T{0}, s, ic);
  if (t.kind == BlockKind::partial) mask_tile(mask, t.i0, t.rows, t.j0, t.cols, nq, nk, s, t.cols);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    T* row = s + r * t.cols;
    const T tile_max = row_max(row, t.cols);
    const T m_new = m[r] > tile_max ? m[r] : tile_max;
    if (m_new == ninf) {  // every key so far hidden: exp(-inf - (-inf)) would be NaN
      std::fill(row, row + t.cols, T{0});
      continue;
    }
    // alpha = exp(m_old - m_new) <= 1; m_old = -inf gives 0. Subtracting the max keeps
    // scores of +-1e4 from overflowing.
    const T alpha = exp_nonpositive(m[r] - m_new);
    const double rowsum = exp_shift_sum(row, t.cols, m_new);
    if (alpha != T{1}) {
      T* a = acc + r * d;
#pragma omp simd
      for (std::int64_t c = 0; c < d; ++c) a[c] *= alpha;
    }
    l[r] = l[r] * static_cast<double>(alpha) + rowsum;
    m[r] = m_new;
  }
  gemm_nn(ir, id, ic, T{1}, s, ic, vj, id, T{1}, acc, id);
}

// out_i = acc / l, lse_i = m + log(l); a row that saw no visible key (l == 0) gets out 0, lse -inf.
template <class T>
void forward_finish(std::int64_t rows, std::int64_t d, const T* m, const double* l, T* acc, T* lse_i) {
  for (std::int64_t r = 0; r < rows; ++r) {
    T* a = acc + r * d;
    if (l[r] == 0) {
      std::fill(a, a + d, T{0});
      lse_i[r] = -std::numeric_limits<T>::infinity();
      continue;
    }
    const T inv = static_cast<T>(1.0 / l[r]);
#pragma omp simd
    for (std::int64_t c = 0; c < d; ++c) a[c] *= inv;
    lse_i[r] = static_cast<T>(static_cast<double>(m[r]) + std::log(l[r]));
  }
}

// Backward step of one tile, accumulating into whichever of dq_i (rows, d), dk_j, dv_j (cols, d)
// is non-null (the others are not needed by the caller's pass):
//   forward: S = s Q K^T + M, P = exp(S - lse)  (P recomputed from lse)
//   forward: O = P V                =>  dV_j += P^T dO_i,  dP = dO_i V_j^T
//   forward: P = softmax_rows(S)    =>  dS = P o (dP - D),  D = rowsum(dO o O)
//   forward: S = s Q K^T            =>  dK_j += s dS^T Q_i,  dQ_i += s dS K_j
template <class T>
void backward_tile(const Mask& mask, const Tile& t, std::int64_t nq, std::int64_t nk, std::int64_t d, T scale,
                   const T* qi, const T* kj, const T* vj, const T* doi, const T* lse_i, const T* d_i, T* p, T* ds,
                   T* dq_i, T* dk_j, T* dv_j) {
  const int ir = static_cast<int>(t.rows), ic = static_cast<int>(t.cols), id = static_cast<int>(d);
  gemm_nt(ir, ic, id, scale, qi, id, kj, id, T{0}, p, ic);
  if (t.kind == BlockKind::partial) mask_tile(mask, t.i0, t.rows, t.j0, t.cols, nq, nk, p, t.cols);
  probs_from_lse(p, t.rows, t.cols, t.cols, lse_i);
  if (dv_j != nullptr) gemm_tn(ic, id, ir, T{1}, p, ic, doi, id, T{1}, dv_j, id);
  gemm_nt(ir, ic, id, T{1}, doi, id, vj, id, T{0}, ds, ic);
  softmax_grad(p, ds, t.rows, t.cols, t.cols, d_i);
  if (dk_j != nullptr) gemm_tn(ic, id, ir, scale, ds, ic, qi, id, T{1}, dk_j, id);
  if (dq_i != nullptr) gemm_nn(ir, id, ic, scale, ds, ic, kj, id, T{1}, dq_i, id);
}

}  // namespace ped::detail
