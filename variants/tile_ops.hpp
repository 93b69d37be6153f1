// One (query tile, key tile) step of the tiled attention kernels, shared by flash and sparse
// (internal, not installed). B batch, H heads, Nq/Nk query/key tokens, d head dim, s scale;
// a tile is rows queries i0 .. i0 + rows by cols keys j0 .. j0 + cols. All buffers row-major:
//   qi (rows, d)   kj, vj (cols, d)   s scratch (rows, cols)   acc (rows, d)
//   m (rows) running max, l (rows) running sum, stats_i, d_i (rows)
// Each step times its phases on the calling thread's PhaseClock (AttentionOptions::phases); the
// soft-cap and ALiBi (apply_scores) count as mask, dropout as softmax.
// Score-level features come in a TileMods (below): the soft-cap and ALiBi modify the score tile
// right after its GEMM (before the mask), dropout the probabilities after their row sums.
#pragma once

#include <pedestrian/attention_dropout.h>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "variants/features.hpp"
#include "variants/kernels.hpp"

namespace ped::detail {

// Geometry of one tile: the element mask is applied only when kind == partial.
struct Tile {
  std::int64_t i0, rows, j0, cols;
  BlockKind kind;
};

// The score-level features of one slice (ScoreMods, variants/features.hpp) in the form the tile math
// applies them; every member off (the default) is plain attention, which costs one test per tile
// (per tile row for dropout) and leaves the plain path's arithmetic as it is.
template <class T>
struct TileMods {
  bool scores = false;        // soft-cap or ALiBi: the score tile is modified (apply_scores)
  T softcap = 0;              // c > 0: S = c tanh(s q.k / c); 0: off
  T inv_softcap = 0;          // 1 / c (computed in double)
  bool alibi = false;
  double slope = 0;           // S_ij -= slope |p - j|
  std::int64_t shift = 0;     // Nk - Nq: query i sits at key position p = i + shift
  bool dropout = false;         // dropout_row (variants/features.hpp)
  const ScoreMods* mods = nullptr;
  std::int64_t slice = 0;       // the slice (b, h) of the kernel call: mods->dropout_row_key(slice, i)
};

template <class T>
TileMods<T> tile_mods(const ScoreMods& mods, std::int64_t slice, std::int64_t nq, std::int64_t nk) {
  TileMods<T> tm;
  if (mods.softcap > 0) {
    tm.softcap = static_cast<T>(mods.softcap);
    tm.inv_softcap = static_cast<T>(1.0 / mods.softcap);
  }
  tm.alibi = mods.alibi_slopes != nullptr;
  tm.slope = mods.slope(slice);
  tm.shift = nk - nq;
  tm.scores = tm.softcap > T{0} || tm.alibi;
  tm.dropout = mods.dropout_p > 0;
  tm.mods = &mods;
  tm.slice = slice;
  return tm;
}

// The soft-cap, then ALiBi, on a (rows, cols) tile of raw scores s q.k (before the mask), row by row
// with modify_score_row (variants/kernels.hpp); g, when not null, gets 1 - tanh^2 (dS_raw = dS g).
template <class T>
void apply_scores(const TileMods<T>& tm, const Tile& t, T* s, T* g) {
  const double slope = tm.alibi ? tm.slope : 0.0;
  for (std::int64_t r = 0; r < t.rows; ++r) {
    modify_score_row(s + r * t.cols, t.cols, tm.softcap, tm.inv_softcap, slope, t.i0 + r + tm.shift, t.j0,
                     g != nullptr ? g + r * t.cols : static_cast<T*>(nullptr));
  }
}

// z (rows, cols) <- Z / (1 - p) of the tile: 1 / (1 - p) where kept, 0 where dropped.
template <class T>
void dropout_tile(const TileMods<T>& tm, const Tile& t, T* z) {
  for (std::int64_t r = 0; r < t.rows; ++r) {
    std::fill(z + r * t.cols, z + (r + 1) * t.cols, T{1});
    dropout_row(*tm.mods, tm.slice, t.i0 + r, t.j0, z + r * t.cols, t.cols);
  }
}

// Online softmax step (FlashAttention-2):
//   S = s Q_i K_j^T (soft-cap, ALiBi: apply_scores; + mask);  m_new = max(m, rowmax(S));  P = exp(S - m_new)
//   l <- l exp(m - m_new) + rowsum(P);  acc <- acc exp(m - m_new) + (P o Z') V_j;  m <- m_new
// with Z' = Z / (1 - p) under dropout (else 1): l sums P before dropout. Sinks are in the m, l the
// caller starts each row with.
template <class T>
void forward_tile(const Mask& mask, const Tile& t, std::int64_t nq, std::int64_t nk, std::int64_t d, T scale,
                  const T* qi, const T* kj, const T* vj, T* s, T* m, double* l, T* acc, const TileMods<T>& tm,
                  PhaseClock& clock) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  const int ir = static_cast<int>(t.rows), ic = static_cast<int>(t.cols), id = static_cast<int>(d);
  clock.start();
  gemm_nt(ir, ic, id, scale, qi, id, kj, id, T{0}, s, ic);
  clock.lap(AttentionPhase::score_gemm);
  if (tm.scores) {
    apply_scores(tm, t, s, static_cast<T*>(nullptr));
    clock.lap(AttentionPhase::mask);
  }
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
    const double rowsum = exp_shift_sum(row, t.cols, m_new);  // the row sums take P before dropout
    if (tm.dropout) dropout_row(*tm.mods, tm.slice, t.i0 + r, t.j0, row, t.cols);
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
// With the score-level features (tm): S as apply_scores gives it; dropout O = (P o Z') V with
// Z' = Z / (1 - p) gives dV_j += (P o Z')^T dO_i and dP = (dO_i V_j^T) o Z' (dS keeps its formula,
// with the undropped P); the soft-cap gives dS_raw = dS o g, g = 1 - tanh^2. z and g are (rows,
// cols) scratch tiles, used only with dropout and the soft-cap respectively.
template <class T>
void backward_tile(const Mask& mask, const Tile& t, std::int64_t nq, std::int64_t nk, std::int64_t d, T scale,
                   const TileArgs<T>& a, T* p, T* ds, T* z, T* g, const TileMods<T>& tm, bool want_dq, bool want_dkv,
                   const DominatedHooks& hooks, PhaseClock& clock) {
  const int ir = static_cast<int>(t.rows), ic = static_cast<int>(t.cols), id = static_cast<int>(d);
  const bool capped = tm.softcap > T{0};
  clock.start();
  gemm_nt(ir, ic, id, scale, a.q, id, a.k, id, T{0}, p, ic);
  clock.lap(AttentionPhase::score_gemm);
  if (tm.scores) {
    apply_scores(tm, t, p, capped ? g : static_cast<T*>(nullptr));
    clock.lap(AttentionPhase::mask);
  }
  if (t.kind == BlockKind::partial) {
    mask_tile(mask, t.i0, t.rows, t.j0, t.cols, nq, nk, p, t.cols);
    clock.lap(AttentionPhase::mask);
  }
  probs_from_stats(p, t.rows, t.cols, t.cols, a.stats);
  clock.lap(AttentionPhase::softmax);
  if (!tm.dropout) {
    if (want_dkv) {
      gemm_tn(ic, id, ir, T{1}, p, ic, a.dout, id, T{1}, a.dv, id);
      clock.lap(AttentionPhase::dv_gemm);
    }
    gemm_nt(ir, ic, id, T{1}, a.dout, id, a.v, id, T{0}, ds, ic);
    clock.lap(AttentionPhase::dp_gemm);
  } else {
    gemm_nt(ir, ic, id, T{1}, a.dout, id, a.v, id, T{0}, ds, ic);
    clock.lap(AttentionPhase::dp_gemm);
    dropout_tile(tm, t, z);  // z = Z'
    const std::int64_t n = t.rows * t.cols;
#pragma omp simd
    for (std::int64_t e = 0; e < n; ++e) {
      ds[e] *= z[e];         // dP o Z'
      z[e] = p[e] * z[e];    // P o Z', the probabilities the value GEMM used
    }
    clock.lap(AttentionPhase::softmax);
    if (want_dkv) {
      gemm_tn(ic, id, ir, T{1}, z, ic, a.dout, id, T{1}, a.dv, id);
      clock.lap(AttentionPhase::dv_gemm);
    }
  }
  const std::size_t first_new = hooks.found != nullptr ? hooks.found->size() : 0;
  if (hooks.state != nullptr) {
    dominated_scan(p, ds, t.rows, t.cols, t.cols, t.i0, t.j0, a.stats, hooks.state, *hooks.found);
    if (capped) {
      for (std::size_t e = first_new; e < hooks.found->size(); ++e) {
        Candidate& c = (*hooks.found)[e];
        c.factor = static_cast<double>(g[(c.row - t.i0) * t.cols + (c.key - t.j0)]);
      }
    }
    clock.lap(AttentionPhase::dominated);
  }
  softmax_grad(p, ds, t.rows, t.cols, t.cols, a.dvec);
  if (capped) {
    const std::int64_t n = t.rows * t.cols;
#pragma omp simd
    for (std::int64_t e = 0; e < n; ++e) ds[e] *= g[e];
  }
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
