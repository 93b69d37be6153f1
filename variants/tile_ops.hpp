// One (query tile, key tile) step of the tiled attention kernels, shared by flash and sparse
// (internal, not installed). B batch, H heads, Nq/Nk query/key tokens, d head dim, s scale;
// a tile is rows queries i0 .. i0 + rows by cols keys j0 .. j0 + cols. All buffers row-major:
//   qi (rows, d)   kj, vj (cols, d)   s scratch (rows, cols)   acc (rows, d)
//   m (rows) running max, l (rows) running sum, stats_i, d_i (rows)
// Each step times its phases on the calling thread's PhaseClock (AttentionOptions::phases).
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
                  const T* qi, const T* kj, const T* vj, T* s, T* m, double* l, T* acc, PhaseClock& clock) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  const int ir = static_cast<int>(t.rows), ic = static_cast<int>(t.cols), id = static_cast<int>(d);
  clock.start();
  gemm_nt(ir, ic, id, scale, qi, id, kj, id, T{0}, s, ic);
  clock.lap(AttentionPhase::score_gemm);
  if (t.kind == BlockKind::partial) {
    mask_tile(mask, t.i0, t.rows, t.j0, t.cols, nq, nk, s, t.cols);
    clock.lap(AttentionPhase::mask);
  }
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
  clock.lap(AttentionPhase::softmax);
  gemm_nn(ir, id, ic, T{1}, s, ic, vj, id, T{1}, acc, id);
  clock.lap(AttentionPhase::value_gemm);
}

// out_i = acc / l, stats_i = {m, 1 / l}; a row that saw no visible key (l == 0) gets out 0, stats
// {-inf, 0}.
template <class T>
void forward_finish(std::int64_t rows, std::int64_t d, const T* m, const double* l, T* acc, RowStats<T>* stats_i,
                    PhaseClock& clock) {
  clock.start();
  for (std::int64_t r = 0; r < rows; ++r) {
    T* a = acc + r * d;
    if (l[r] == 0) {
      std::fill(a, a + d, T{0});
      stats_i[r] = RowStats<T>{};
      continue;
    }
    const T inv = static_cast<T>(1.0 / l[r]);
#pragma omp simd
    for (std::int64_t c = 0; c < d; ++c) a[c] *= inv;
    stats_i[r] = RowStats<T>{m[r], inv};
  }
  clock.lap(AttentionPhase::softmax);
}

// The tile's slice of every backward operand, offset to its rows i0 .. and keys j0 ..:
// q, dout, dq (rows, d), k, v, dk, dv (cols, d), stats and D (rows).
template <class T>
struct TileArgs {
  const T* q;
  const T* k;
  const T* v;
  const T* dout;
  const RowStats<T>* stats;
  const T* dvec;
  T* dq;
  T* dk;
  T* dv;
};

// Dominated-row handling of one tile (variants/kernels.hpp), selected by which members are set:
// state and found where the tiles of whole rows are visited (A_i, B_i added up, candidates noted and
// left out of the tile's dS); left_out where dK is computed from candidates found before (their dS
// left out of the tile's dS). Either way a candidate's dS enters dQ and dK apart, once its row is
// complete.
struct DominatedHooks {
  DominatedRow* state = nullptr;             // the tile's rows
  std::vector<Candidate>* found = nullptr;
  const std::vector<Candidate>* left_out = nullptr;
};

// Backward step of one tile, accumulating into dq (want_dq) and into dk, dv (want_dkv):
//   forward: S = s Q K^T + M, P = exp(S - max) * inv_sum  (P recomputed from the row stats)
//   forward: O = P V                =>  dV_j += P^T dO_i,  dP = dO_i V_j^T
//   forward: P = softmax_rows(S)    =>  dS = P o (dP - D),  D = rowsum(dO o O)
//   forward: S = s Q K^T            =>  dK_j += s dS^T Q_i,  dQ_i += s dS K_j
template <class T>
void backward_tile(const Mask& mask, const Tile& t, std::int64_t nq, std::int64_t nk, std::int64_t d, T scale,
                   const TileArgs<T>& a, T* p, T* ds, bool want_dq, bool want_dkv, const DominatedHooks& hooks,
                   PhaseClock& clock) {
  const int ir = static_cast<int>(t.rows), ic = static_cast<int>(t.cols), id = static_cast<int>(d);
  clock.start();
  gemm_nt(ir, ic, id, scale, a.q, id, a.k, id, T{0}, p, ic);
  clock.lap(AttentionPhase::score_gemm);
  if (t.kind == BlockKind::partial) {
    mask_tile(mask, t.i0, t.rows, t.j0, t.cols, nq, nk, p, t.cols);
    clock.lap(AttentionPhase::mask);
  }
  probs_from_stats(p, t.rows, t.cols, t.cols, a.stats);
  clock.lap(AttentionPhase::softmax);
  if (want_dkv) {
    gemm_tn(ic, id, ir, T{1}, p, ic, a.dout, id, T{1}, a.dv, id);
    clock.lap(AttentionPhase::dv_gemm);
  }
  gemm_nt(ir, ic, id, T{1}, a.dout, id, a.v, id, T{0}, ds, ic);
  clock.lap(AttentionPhase::dp_gemm);
  const std::size_t first_new = hooks.found != nullptr ? hooks.found->size() : 0;
  if (hooks.state != nullptr) {
    dominated_scan(p, ds, t.rows, t.cols, t.cols, t.i0, t.j0, a.stats, hooks.state, *hooks.found);
    clock.lap(AttentionPhase::dominated);
  }
  softmax_grad(p, ds, t.rows, t.cols, t.cols, a.dvec);
  clock.lap(AttentionPhase::softmax_grad);
  if (hooks.found != nullptr) {
    for (std::size_t e = first_new; e < hooks.found->size(); ++e) {
      const Candidate& c = (*hooks.found)[e];
      ds[(c.row - t.i0) * t.cols + (c.key - t.j0)] = T{0};  // added apart once the row is complete
    }
  }
  if (hooks.left_out != nullptr) dominated_zero(*hooks.left_out, t.i0, t.rows, t.j0, t.cols, ds, t.cols);
  if (hooks.found != nullptr || hooks.left_out != nullptr) clock.lap(AttentionPhase::dominated);
  if (want_dkv) {
    gemm_tn(ic, id, ir, scale, ds, ic, a.q, id, T{1}, a.dk, id);
    clock.lap(AttentionPhase::dk_gemm);
  }
  if (want_dq) {
    gemm_nn(ir, id, ic, scale, ds, ic, a.k, id, T{1}, a.dq, id);
    clock.lap(AttentionPhase::dq_gemm);
  }
}

}  // namespace ped::detail
