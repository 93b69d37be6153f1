// Blocked attention: cache-blocked row strips with BLAS. B batch, H heads, Nq/Nk query/key tokens,
// d head dim, s scale, Bt = tile_q rows per strip (default 64).
//
// Forward, per (b, h, query strip i0 .. i0 + Bt): the strip's visible keys lie in [jlo, jhi) (the
// union of its rows' extents), S = s Q_strip K[jlo:jhi]^T is one GEMM, the element mask sets hidden
// pairs to -inf, an exact row softmax gives P, and O_strip = P V[jlo:jhi] is one GEMM.
// Backward, two race-free passes:
//   pass 1 per query strip: P = exp(S - max) * inv_sum (the forward's row stats), dP = dO V^T,
//          dS = P o (dP - D) (the exact form for a dominated row's dominant entry), dQ_strip = s dS K;
//   pass 2 per key strip j0 .. j0 + Bt: the same P, dS for the queries that see the strip, then
//          dV_strip = P^T dO and dK_strip = s dS^T Q.
// Memory O(Bt Nk) per thread in pass 1 and forward, O(Nq Bt) in pass 2 (one more such buffer per
// pass with soft-cap: the factors 1 - t^2).
// Every AttentionFeature: grouped-query heads and per-sequence lengths by slicing (features.hpp);
// after each score GEMM the soft-cap and the ALiBi bias (modify_scores, before the mask, so the
// forward and both backward passes compute the same scores); the sink in the row max and sum (a row
// without a visible key: stats {sink, 1}); dropout's Z / (1 - p) on P before O = P V and dV = P^T dO
// and on dP (apply_dropout); the soft-cap's 1 - t^2 on dS before dQ, dK; d sink = -sum_i P_i,sink D_i
// from the row stats after pass 2. The dominated rows' exact dS stays exact with all of them (see
// pass 1). With every feature off the extra work is a few flag tests per strip.
// AttentionOptions::phases, when set, gets the time of each phase of the strips (PhaseClock); the
// soft-cap and ALiBi count as score_gemm, dropout as softmax (forward) or dp_gemm / dv_gemm, the
// soft-cap's backward factor as dq_gemm / dk_gemm.
#include "variants/blocked_attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "variants/features.hpp"
#include "variants/kernels.hpp"
#include "variants/nonfinite.hpp"

namespace ped {

namespace {

constexpr std::int64_t kDefaultTile = 64;

// Per query row, the smallest interval [lo, hi) of keys holding every visible key (lo == hi when
// none). extents (Nq).
std::vector<KeyInterval> row_extents(const Mask& mask, std::int64_t nq, std::int64_t nk, int threads) {
  std::vector<KeyInterval> ext(static_cast<std::size_t>(nq));
#pragma omp parallel num_threads(detail::team(threads, nq / 256))
  {
    std::vector<KeyInterval> ivs;
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < nq; ++i) {
      mask.row_intervals(i, nq, nk, ivs);
      ext[i] = ivs.empty() ? KeyInterval{0, 0} : KeyInterval{ivs.front().lo, ivs.back().hi};
    }
  }
  return ext;
}

// Key range [lo, hi) covering the visible keys of rows [i0, i1); lo >= hi when all are hidden.
KeyInterval strip_keys(const std::vector<KeyInterval>& ext, std::int64_t i0, std::int64_t i1) {
  KeyInterval r{std::numeric_limits<std::int64_t>::max(), 0};
  for (std::int64_t i = i0; i < i1; ++i) {
    if (ext[i].lo >= ext[i].hi) continue;
    r.lo = std::min(r.lo, ext[i].lo);
    r.hi = std::max(r.hi, ext[i].hi);
  }
  return r;
}

// Soft-cap and ALiBi on a (rows, cols) tile of scores s q.k (ld), query rows i0 .., keys j0 .. of
// slice x, before the mask, row by row with modify_score_row (variants/kernels.hpp): S = c tanh(s q.k
// / c), then S -= slope |p - j| with p = i + (Nk - Nq). factor, when not null, gets the soft-cap's
// backward factor 1 - t^2 (ld as the tile). The same inputs give bitwise the same scores in every pass.
template <class T>
void modify_scores(const detail::ScoreMods& mods, std::int64_t x, std::int64_t i0, std::int64_t rows, std::int64_t j0,
                   std::int64_t cols, std::int64_t nq, std::int64_t nk, T* s, std::int64_t ld, T* factor) {
  const T cap = static_cast<T>(mods.softcap), inv_cap = static_cast<T>(mods.softcap > 0 ? 1 / mods.softcap : 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    detail::modify_score_row(s + r * ld, cols, cap, inv_cap, mods.slope(x), i0 + r + (nk - nq), j0,
                             factor != nullptr ? factor + r * ld : static_cast<T*>(nullptr));
  }
}

// Dropout on a (rows, cols) tile (ld), query rows i0 .., keys j0 .. of slice x: each entry times
// Z_ij / (1 - dropout_p), that is 0 where the pair is dropped (detail::dropout_row per row).
template <class T>
void apply_dropout(const detail::ScoreMods& mods, std::int64_t x, std::int64_t i0, std::int64_t rows, std::int64_t j0,
                   std::int64_t cols, T* a, std::int64_t ld) {
  for (std::int64_t r = 0; r < rows; ++r) detail::dropout_row(mods, x, i0 + r, j0, a + r * ld, cols);
}

// a (rows, cols) <- a o f element-wise (both with leading dimension ld).
template <class T>
void scale_by(T* a, const T* f, std::int64_t rows, std::int64_t cols, std::int64_t ld) {
  for (std::int64_t r = 0; r < rows; ++r) {
#pragma omp simd
    for (std::int64_t c = 0; c < cols; ++c) a[r * ld + c] *= f[r * ld + c];
  }
}

template <class T>
void blocked_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                     const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options,
                     const detail::ScoreMods& mods) {
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t qStrideBH = nq * d, kStrideBH = nk * d;
  const std::int64_t bt = options.tile_q > 0 ? options.tile_q : kDefaultTile;
  const std::int64_t strips = detail::ceil_div(nq, bt);
  const bool modified = mods.softcap > 0 || mods.alibi_slopes != nullptr;
  const bool sinks = mods.sinks != nullptr, dropout = mods.dropout_p > 0;
  const int threads = detail::resolve_threads(options);
  const std::vector<KeyInterval> ext = row_extents(mask, nq, nk, threads);
  detail::BlasSingleThreaded blas1;

#pragma omp parallel num_threads(detail::team(threads, bh * strips))
  {
    detail::Scratch<T> sbuf(static_cast<std::size_t>(std::min(bt, nq) * nk));  // (Bt, Nk) S, then P
    detail::PhaseClock clock(options.phases);
#pragma omp for schedule(dynamic)
    for (std::int64_t unit = 0; unit < bh * strips; ++unit) {
      const std::int64_t x = unit / strips, i0 = (unit % strips) * bt;
      const std::int64_t rows = std::min(bt, nq - i0);
      const T* qs = q + x * qStrideBH + i0 * d;
      T* os = out + x * qStrideBH + i0 * d;
      RowStats<T>* st = stats + x * nq + i0;
      const KeyInterval keys = strip_keys(ext, i0, i0 + rows);
      // A row that sees no key: P = 0, out 0; stats {-inf, 0}, or with a sink {sink, 1}.
      const RowStats<T> keyless = sinks ? RowStats<T>{static_cast<T>(mods.sink(x)), T{1}} : RowStats<T>{};
      if (keys.lo >= keys.hi) {  // every row of the strip fully masked
        std::fill(os, os + rows * d, T{0});
        std::fill(st, st + rows, keyless);
        continue;
      }
      const std::int64_t w = keys.hi - keys.lo;
      T* s = sbuf.data();  // (rows, w), ld w
      // S = s Q_strip K[jlo:jhi]^T
      clock.start();
      detail::gemm_nt(static_cast<int>(rows), static_cast<int>(w), static_cast<int>(d), scale, qs,
                      static_cast<int>(d), k + x * kStrideBH + keys.lo * d, static_cast<int>(d), T{0}, s,
                      static_cast<int>(w));
      if (modified) modify_scores(mods, x, i0, rows, keys.lo, w, nq, nk, s, w, static_cast<T*>(nullptr));
      clock.lap(AttentionPhase::score_gemm);
      detail::mask_tile(mask, i0, rows, keys.lo, w, nq, nk, s, w);
      clock.lap(AttentionPhase::mask);
      const T sink = static_cast<T>(mods.sink(x));  // -inf without sinks
      for (std::int64_t r = 0; r < rows; ++r) {
        T* row = s + r * w;
        T m = detail::row_max(row, w);
        if (sinks) m = std::max(m, sink);  // the sink joins the row max and sum
        if (m == -std::numeric_limits<T>::infinity()) {  // no visible key: -inf - (-inf) would be NaN
          std::fill(row, row + w, T{0});
          st[r] = RowStats<T>{};
          continue;
        }
        // P_r = exp(S_r - m) / sum; shifting by the row max keeps scores of +-1e4 from overflowing
        double sum = detail::exp_shift_sum(row, w, m);
        if (sinks) sum += std::exp(static_cast<double>(sink) - static_cast<double>(m));
        const T inv = static_cast<T>(1.0 / sum);
#pragma omp simd
        for (std::int64_t c = 0; c < w; ++c) row[c] *= inv;
        st[r] = RowStats<T>{m, inv};
      }
      // O = (P o Z / (1 - dropout_p)) V; the stats describe P before dropout
      if (dropout) apply_dropout(mods, x, i0, rows, keys.lo, w, s, w);
      clock.lap(AttentionPhase::softmax);
      // O_strip = P V[jlo:jhi]
      detail::gemm_nn(static_cast<int>(rows), static_cast<int>(d), static_cast<int>(w), T{1}, s, static_cast<int>(w),
                      v + x * kStrideBH + keys.lo * d, static_cast<int>(d), T{0}, os, static_cast<int>(d));
      clock.lap(AttentionPhase::value_gemm);
    }
  }
}

template <class T>
void blocked_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                      const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv,
                      const AttentionOptions& options, const detail::ScoreMods& mods) {
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t qStrideBH = nq * d, kStrideBH = nk * d;
  const std::int64_t bt = options.tile_q > 0 ? options.tile_q : kDefaultTile;
  const int threads = detail::resolve_threads(options);
  const std::vector<KeyInterval> ext = row_extents(mask, nq, nk, threads);
  detail::BlasSingleThreaded blas1;
  const bool modified = mods.softcap > 0 || mods.alibi_slopes != nullptr, softcap = mods.softcap > 0;
  const bool sinks = mods.sinks != nullptr, dropout = mods.dropout_p > 0;

  // D (B, H, Nq) = rowsum(dO o O) = rowsum(dP o P)
  std::vector<T> dvec(static_cast<std::size_t>(bh * nq));
  detail::rowsum_dout_out(dout, out, bh * nq, d, dvec.data(), threads);
  // Rows dominated by one key (variants/kernels.hpp): pass 1 sees whole rows, puts the candidates'
  // dS in place and keeps them here, per (b, h, query strip), for pass 2 to put the same values in place.
  const std::int64_t qstrips = detail::ceil_div(nq, bt);
  const bool dominated = detail::any_dominated(stats, bh * nq);
  std::vector<std::vector<detail::Candidate>> candidates(dominated ? static_cast<std::size_t>(bh * qstrips) : 0);
  // Per (b, h, query) row, the key whose score pass 1 (the forward's own GEMM) found equal to the row
  // max, -1 if none. Pass 2 computes its scores with GEMMs of other shapes, which OpenBLAS may round
  // differently by an ulp; at that key exp(S - max) would then be 1 +- ulp(|S|) instead of exactly 1,
  // a first-order error in the row's largest probability, so pass 2 sets that score to the max.
  std::vector<std::int64_t> argmax(static_cast<std::size_t>(bh * nq), -1);

  // Pass 1: dQ by query strips.
#pragma omp parallel num_threads(detail::team(threads, bh * qstrips))
  {
    std::vector<detail::DominatedRow> rowstate;
    detail::Scratch<T> pbuf(static_cast<std::size_t>(std::min(bt, nq) * nk));   // (Bt, Nk) S, then P
    detail::Scratch<T> dpbuf(static_cast<std::size_t>(std::min(bt, nq) * nk));  // (Bt, Nk) dP, then dS
    detail::Scratch<T> fbuf(softcap ? static_cast<std::size_t>(std::min(bt, nq) * nk) : 0);  // (Bt, Nk) 1 - t^2
    detail::PhaseClock clock(options.phases);
#pragma omp for schedule(dynamic)
    for (std::int64_t unit = 0; unit < bh * qstrips; ++unit) {
      const std::int64_t x = unit / qstrips, i0 = (unit % qstrips) * bt;
      const std::int64_t rows = std::min(bt, nq - i0);
      T* dqs = dq + x * qStrideBH + i0 * d;
      const KeyInterval keys = strip_keys(ext, i0, i0 + rows);
      if (keys.lo >= keys.hi) {
        std::fill(dqs, dqs + rows * d, T{0});
        continue;
      }
      const std::int64_t w = keys.hi - keys.lo;
      const int iw = static_cast<int>(w), id = static_cast<int>(d), ir = static_cast<int>(rows);
      const T* kx = k + x * kStrideBH + keys.lo * d;
      const T* vx = v + x * kStrideBH + keys.lo * d;
      const T* dos = dout + x * qStrideBH + i0 * d;
      T* p = pbuf.data();
      T* ds = dpbuf.data();
      // forward: S = s Q K^T + M, P = exp(S - max) * inv_sum
      clock.start();
      detail::gemm_nt(ir, iw, id, scale, q + x * qStrideBH + i0 * d, id, kx, id, T{0}, p, iw);
      if (modified) modify_scores(mods, x, i0, rows, keys.lo, w, nq, nk, p, w, softcap ? fbuf.data() : nullptr);
      clock.lap(AttentionPhase::score_gemm);
      detail::mask_tile(mask, i0, rows, keys.lo, w, nq, nk, p, w);
      clock.lap(AttentionPhase::mask);
      for (std::int64_t r = 0; r < rows; ++r) {
        const T m = stats[x * nq + i0 + r].max;
        if (m == -std::numeric_limits<T>::infinity()) continue;
        const T* srow = p + r * w;
        for (std::int64_t c = 0; c < w; ++c) {
          if (srow[c] == m) {
            argmax[x * nq + i0 + r] = keys.lo + c;
            break;
          }
        }
      }
      detail::probs_from_stats(p, rows, w, w, stats + x * nq + i0);
      clock.lap(AttentionPhase::softmax);
      // forward: O = (P o Z / (1 - dropout_p)) V  =>  dP = (dO V^T) o Z / (1 - dropout_p)
      detail::gemm_nt(ir, iw, id, T{1}, dos, id, vx, id, T{0}, ds, iw);
      if (dropout) apply_dropout(mods, x, i0, rows, keys.lo, w, ds, w);
      clock.lap(AttentionPhase::dp_gemm);
      // forward: P = softmax_rows(S)  =>  dS = P o (dP - D); a dominated row's candidate: exact form.
      // That form stays exact with the features: D_i = sum_j P_ij dP_ij holds with dropout's dP
      // (the scan sees dP after dropout), and 1 - P_ij* = B_i + P_i,sink, so a sink's probability
      // joins B_i below; the soft-cap's factor applies to dS afterwards, candidates included.
      if (dominated) {
        std::vector<detail::Candidate>& found = candidates[unit];
        rowstate.assign(static_cast<std::size_t>(rows), detail::DominatedRow{});
        detail::dominated_scan(p, ds, rows, w, w, i0, keys.lo, stats + x * nq + i0, rowstate.data(), found);
        if (sinks) {
          for (std::int64_t r = 0; r < rows; ++r) {
            const RowStats<T>& st = stats[x * nq + i0 + r];
            if (st.inv_sum > T{0.5}) rowstate[static_cast<std::size_t>(r)].b += detail::sink_probability(st, mods.sink(x));
          }
        }
        clock.lap(AttentionPhase::dominated);
        detail::softmax_grad(p, ds, rows, w, w, dvec.data() + x * nq + i0);
        clock.lap(AttentionPhase::softmax_grad);
        detail::dominated_finish(found, i0, rowstate.data(), dvec.data() + x * nq + i0);
        detail::dominated_put(found, i0, rows, keys.lo, w, ds, w);
        clock.lap(AttentionPhase::dominated);
      } else {
        detail::softmax_grad(p, ds, rows, w, w, dvec.data() + x * nq + i0);
        clock.lap(AttentionPhase::softmax_grad);
      }
      // forward: S = c tanh(s q.k / c)  =>  dS_raw = dS (1 - t^2)   (ALiBi's bias is a constant)
      if (softcap) scale_by(ds, fbuf.data(), rows, w, w);
      // forward: S = s Q K^T  =>  dQ = s dS K
      detail::gemm_nn(ir, id, iw, scale, ds, iw, kx, id, T{0}, dqs, id);
      clock.lap(AttentionPhase::dq_gemm);
    }
  }

  // Pass 2: dK, dV by key strips.
  const std::int64_t kstrips = detail::ceil_div(nk, bt);
#pragma omp parallel num_threads(detail::team(threads, bh * kstrips))
  {
    detail::Scratch<T> pbuf(static_cast<std::size_t>(nq * std::min(bt, nk)));   // (Nq, Bt) S, then P
    detail::Scratch<T> dpbuf(static_cast<std::size_t>(nq * std::min(bt, nk)));  // (Nq, Bt) dP, then dS
    detail::Scratch<T> fbuf(softcap ? static_cast<std::size_t>(nq * std::min(bt, nk)) : 0);  // (Nq, Bt) 1 - t^2
    detail::PhaseClock clock(options.phases);
#pragma omp for schedule(dynamic)
    for (std::int64_t unit = 0; unit < bh * kstrips; ++unit) {
      const std::int64_t x = unit / kstrips, j0 = (unit % kstrips) * bt;
      const std::int64_t cols = std::min(bt, nk - j0);
      T* dks = dk + x * kStrideBH + j0 * d;
      T* dvs = dv + x * kStrideBH + j0 * d;
      // Queries [ilo, ihi) covering every query that sees a key of this strip.
      std::int64_t ilo = nq, ihi = 0;
      for (std::int64_t i = 0; i < nq; ++i) {
        if (ext[i].lo < j0 + cols && ext[i].hi > j0 && ext[i].lo < ext[i].hi) {
          ilo = std::min(ilo, i);
          ihi = i + 1;
        }
      }
      if (ilo >= ihi) {
        std::fill(dks, dks + cols * d, T{0});
        std::fill(dvs, dvs + cols * d, T{0});
        continue;
      }
      const std::int64_t rows = ihi - ilo;
      const int ic = static_cast<int>(cols), id = static_cast<int>(d), ir = static_cast<int>(rows);
      const T* qs = q + x * qStrideBH + ilo * d;
      const T* dos = dout + x * qStrideBH + ilo * d;
      T* p = pbuf.data();
      T* ds = dpbuf.data();
      // forward: S = s Q K^T + M, P = exp(S - max) * inv_sum   (rows, cols)
      clock.start();
      detail::gemm_nt(ir, ic, id, scale, qs, id, k + x * kStrideBH + j0 * d, id, T{0}, p, ic);
      if (modified) modify_scores(mods, x, ilo, rows, j0, cols, nq, nk, p, cols, softcap ? fbuf.data() : nullptr);
      clock.lap(AttentionPhase::score_gemm);
      detail::mask_tile(mask, ilo, rows, j0, cols, nq, nk, p, cols);
      clock.lap(AttentionPhase::mask);
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t top = argmax[x * nq + ilo + r];
        if (top >= j0 && top < j0 + cols) p[r * cols + top - j0] = stats[x * nq + ilo + r].max;
      }
      detail::probs_from_stats(p, rows, cols, cols, stats + x * nq + ilo);
      clock.lap(AttentionPhase::softmax);
      // forward: O = (P o Z / (1 - p)) V  =>  dP = (dO V^T) o Z / (1 - p), dS = P o (dP - D)
      detail::gemm_nt(ir, ic, id, T{1}, dos, id, v + x * kStrideBH + j0 * d, id, T{0}, ds, ic);
      if (dropout) apply_dropout(mods, x, ilo, rows, j0, cols, ds, cols);
      clock.lap(AttentionPhase::dp_gemm);
      detail::softmax_grad(p, ds, rows, cols, cols, dvec.data() + x * nq + ilo);
      clock.lap(AttentionPhase::softmax_grad);
      if (dominated) {
        for (std::int64_t strip = ilo / bt; strip * bt < ihi; ++strip) {
          detail::dominated_put(candidates[x * qstrips + strip], ilo, rows, j0, cols, ds, cols);
        }
        clock.lap(AttentionPhase::dominated);
      }
      // forward: O = (P o Z / (1 - p)) V  =>  dV = (P o Z / (1 - p))^T dO   (P is not needed after)
      if (dropout) apply_dropout(mods, x, ilo, rows, j0, cols, p, cols);
      detail::gemm_tn(ic, id, ir, T{1}, p, ic, dos, id, T{0}, dvs, id);
      clock.lap(AttentionPhase::dv_gemm);
      // forward: S = c tanh(s q.k / c)  =>  dS_raw = dS (1 - t^2)
      if (softcap) scale_by(ds, fbuf.data(), rows, cols, cols);
      // forward: S = s Q K^T  =>  dK = s dS^T Q
      detail::gemm_tn(ic, id, ir, scale, ds, ic, qs, id, T{0}, dks, id);
      clock.lap(AttentionPhase::dk_gemm);
    }
  }

  // d sink = -sum_i P_i,sink D_i per slice, summed in row order (the sink has no value row: dP = 0)
  if (mods.dsinks != nullptr) {
    for (std::int64_t x = 0; x < bh; ++x) {
      double sum = 0;
      for (std::int64_t i = 0; i < nq; ++i) {
        sum += detail::sink_probability(stats[x * nq + i], mods.sink(x)) * static_cast<double>(dvec[x * nq + i]);
      }
      mods.dsinks[x] = -sum;
    }
  }
}

}  // namespace

template <class T>
void blocked_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                               const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options) {
  detail::check_forward_args("blocked_attention_forward", shape, mask, scale, q, k, v, out, stats, options);
  detail::require_features("blocked_attention_forward", shape, options.features, kAllAttentionFeatures);
  detail::forward_features(
      "blocked_attention_forward", shape, mask, q, k, v, out, stats, options,
      [&](const AttentionShape& slice, const T* sq, const T* sk, const T* sv, T* sout, RowStats<T>* sstats,
          const detail::ScoreMods& mods) {
        detail::forward_with_nonfinite(slice, mask, sq, sk, sv, sout, sstats, detail::resolve_threads(options),
                                       [&](const T* qf, const T* kf, const T* vf) { blocked_forward(slice, mask, scale, qf, kf, vf, sout, sstats, options, mods); });
      });
}

template <class T>
void blocked_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                                const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk,
                                T* dv, const AttentionOptions& options) {
  detail::check_backward_args("blocked_attention_backward", shape, mask, scale, q, k, v, out, stats, dout, dq, dk, dv,
                              options);
  detail::require_features("blocked_attention_backward", shape, options.features, kAllAttentionFeatures);
  detail::backward_features(
      "blocked_attention_backward", shape, mask, q, k, v, out, stats, dout, dq, dk, dv, options,
      [&](const AttentionShape& slice, const T* sq, const T* sk, const T* sv, const T* sout, const RowStats<T>* sstats,
          const T* sdout, T* sdq, T* sdk, T* sdv, const detail::ScoreMods& mods) {
        detail::backward_with_nonfinite(
            slice, mask, sq, sk, sv, sout, sstats, sdout, sdq, sdk, sdv, detail::resolve_threads(options),
            [&](const T* qf, const T* kf, const T* vf, const T* of, const RowStats<T>* sf, const T* gf) { blocked_backward(slice, mask, scale, qf, kf, vf, of, sf, gf, sdq, sdk, sdv, options, mods); });
      });
}

#define PED_INSTANTIATE(T)                                                                                            \
  template void blocked_attention_forward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*, T*, \
                                             RowStats<T>*, const AttentionOptions&);                                  \
  template void blocked_attention_backward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*,    \
                                              const T*, const RowStats<T>*, const T*, T*, T*, T*, const AttentionOptions&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped
