// Naive attention: the algorithmic reference. B batch, H heads, Nq/Nk query/key tokens, d head dim,
// s scale. Per (b, h) it materialises S and P (Nq, Nk) in double (the wider type, so the reference
// is more accurate than the variants checked against it), with plain loops and the element-wise
// Mask::visible; no BLAS. The (b, h) slices run one after another, each parallel over query rows
// (P, dP, dS, dQ) and over key blocks (dK, dV), so no two threads write the same row.
// Every AttentionFeature, written out as the formulas of variants/attention.hpp: grouped-query heads
// and per-sequence lengths by slicing (features.hpp); per pair the soft-cap, then the ALiBi bias,
// then the mask (score()); the sink in each row's max and sum (probability_row); dropout's
// Z / (1 - p) on P in O and dV and on dP (dropout_factor); the soft-cap's 1 - t^2 on dS; and
// d sink = -sum_i P_i,sink D_i per slice.
#include "variants/naive_attention.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "variants/features.hpp"
#include "variants/kernels.hpp"
#include "variants/nonfinite.hpp"

namespace ped {

namespace {

using Acc = double;
constexpr Acc kNegInf = -std::numeric_limits<Acc>::infinity();
constexpr std::int64_t kKeyBlock = 32;  // keys per work item of the dK, dV loop
// Threads used for one (b, h) slice: one per 2^18 multiply-adds at least, so small slices
// do not pay for a team.
int slice_team(int threads, std::int64_t nq, std::int64_t nk, std::int64_t d) {
  return detail::team(threads, nq * nk * d >> 18);
}

// The score S_ij of a visible pair of slice x, before the mask: s q_i . k_j, soft-capped to
// c tanh(s q_i . k_j / c) when c > 0, minus the ALiBi bias slope |p - j| with p = i + (Nk - Nq) the
// query's key-space position. *t <- tanh(s q_i . k_j / c) (the soft-cap's backward factor is
// 1 - t^2); 0 without soft-cap.
template <class T>
Acc score(const detail::ScoreMods& mods, std::int64_t x, std::int64_t i, std::int64_t j, std::int64_t nq,
          std::int64_t nk, std::int64_t d, T scale, const T* q, const T* k, Acc* t) {
  const T* qi = q + i * d;
  const T* kj = k + j * d;
  Acc dot = 0;
  for (std::int64_t c = 0; c < d; ++c) dot += static_cast<Acc>(qi[c]) * static_cast<Acc>(kj[c]);
  Acc s = static_cast<Acc>(scale) * dot;  // S_ij = s q_i . k_j
  *t = 0;
  if (mods.softcap > 0) {
    *t = std::tanh(s / mods.softcap);
    s = mods.softcap * *t;
  }
  const std::int64_t p = i + (nk - nq);
  return s - mods.slope(x) * static_cast<Acc>(p > j ? p - j : j - p);
}

// Z_ij / (1 - dropout_p) for row i of slice x: 0 for a dropped pair, 1 / (1 - p) for a kept one,
// 1 without dropout.
Acc dropout_factor(const detail::ScoreMods& mods, std::int64_t x, std::int64_t i, std::int64_t j) {
  if (!(mods.dropout_p > 0)) return 1;
  return ped_dropout_keep_at(mods.dropout_row_key(x, i), j, mods.dropout_threshold()) ? mods.dropout_scale() : 0;
}

// A row's softmax statistics, in double: max = max(sink, max_j S_ij) and sum = exp(sink - max) +
// sum_j exp(S_ij - max) (no sink: sink = -inf, exp(-inf) = 0). max = -inf: the row sees no key and
// has no sink.
struct RowSoftmax {
  Acc max = kNegInf;
  Acc sum = 0;
  // P_i,sink = exp(sink - max) / sum; 0 without a sink or for a row without key and sink.
  Acc sink_probability(Acc sink) const { return max == kNegInf ? 0 : std::exp(sink - max) / sum; }
  template <class T>
  RowStats<T> stats() const {
    if (max == kNegInf) return {};
    return {static_cast<T>(max), static_cast<T>(1 / sum)};
  }
};

// Row i of P (Nq, Nk) of slice x <- exp(S_i - max) / sum, with S the masked scores (score above);
// trow (Nk), when not null, gets each visible pair's tanh factor t. Hidden pairs get P = 0; a row
// without a visible key gets P = 0 and, with a sink, max = sink and sum = 1.
template <class T>
RowSoftmax probability_row(const Mask& mask, const detail::ScoreMods& mods, std::int64_t x, std::int64_t i,
                           std::int64_t nq, std::int64_t nk, std::int64_t d, T scale, const T* q, const T* k,
                           Acc* prow, Acc* trow) {
  const Acc sink = mods.sink(x);
  RowSoftmax r;
  r.max = sink;  // -inf without a sink
  for (std::int64_t j = 0; j < nk; ++j) {
    Acc t = 0;
    prow[j] = mask.visible(i, j, nq, nk) ? score(mods, x, i, j, nq, nk, d, scale, q, k, &t) : kNegInf;
    if (trow != nullptr) trow[j] = t;
    r.max = std::max(r.max, prow[j]);
  }
  if (r.max == kNegInf) {  // no visible key and no sink: exp(-inf - (-inf)) would be NaN, so the row is set to 0
    std::fill(prow, prow + nk, Acc{0});
    return r;
  }
  r.sum = std::exp(sink - r.max);  // the sink's term (0 without one)
  for (std::int64_t j = 0; j < nk; ++j) {
    prow[j] = std::exp(prow[j] - r.max);  // shifted by the row max: scores of +-1e4 cannot overflow
    r.sum += prow[j];
  }
  for (std::int64_t j = 0; j < nk; ++j) prow[j] /= r.sum;
  return r;
}

template <class T>
void naive_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k, const T* v, T* out,
                   RowStats<T>* stats, const AttentionOptions& options, const detail::ScoreMods& mods) {
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t qStrideBH = nq * d, kStrideBH = nk * d;  // elements per (b, h) slice
  const int threads = detail::resolve_threads(options);
  std::vector<Acc> p(static_cast<std::size_t>(nq * nk));  // (Nq, Nk) probabilities of one (b, h)

  for (std::int64_t x = 0; x < bh; ++x) {
    const T* qx = q + x * qStrideBH;
    const T* kx = k + x * kStrideBH;
    const T* vx = v + x * kStrideBH;
#pragma omp parallel num_threads(slice_team(threads, nq, nk, d))
    {
      std::vector<Acc> o(static_cast<std::size_t>(d));  // (d) one output row
#pragma omp for schedule(static)
      for (std::int64_t i = 0; i < nq; ++i) {
        Acc* prow = p.data() + i * nk;
        stats[x * nq + i] = probability_row(mask, mods, x, i, nq, nk, d, scale, qx, kx, prow, nullptr).template stats<T>();
        // O_i = sum_j P_ij Z_ij / (1 - dropout_p) v_j   (the stats describe P before dropout)
        std::fill(o.begin(), o.end(), Acc{0});
        for (std::int64_t j = 0; j < nk; ++j) {
          const Acc pij = prow[j] * dropout_factor(mods, x, i, j);
          if (pij == 0) continue;
          const T* vj = vx + j * d;
          for (std::int64_t c = 0; c < d; ++c) o[c] += pij * static_cast<Acc>(vj[c]);
        }
        T* orow = out + x * qStrideBH + i * d;
        for (std::int64_t c = 0; c < d; ++c) orow[c] = static_cast<T>(o[c]);
      }
    }
  }
}

template <class T>
void naive_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k, const T* v,
                    const T* /*out*/, const RowStats<T>* /*stats*/, const T* dout, T* dq, T* dk, T* dv,
                    const AttentionOptions& options, const detail::ScoreMods& mods) {
  // out and stats are not read: the reference recomputes P, and D = rowsum(dO o O), in double.
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t qStrideBH = nq * d, kStrideBH = nk * d;
  const std::int64_t key_blocks = detail::ceil_div(nk, kKeyBlock);
  const int threads = detail::resolve_threads(options);
  const Acc s = static_cast<Acc>(scale);
  std::vector<Acc> p(static_cast<std::size_t>(nq * nk));   // (Nq, Nk) P, then P o Z / (1 - dropout_p)
  std::vector<Acc> ds(static_cast<std::size_t>(nq * nk));  // (Nq, Nk) dP, then dS in place
  std::vector<Acc> t(mods.softcap > 0 ? static_cast<std::size_t>(nq * nk) : 0);  // (Nq, Nk) soft-cap tanh
  std::vector<Acc> sink_terms(static_cast<std::size_t>(nq));  // P_i,sink D_i per row

  for (std::int64_t x = 0; x < bh; ++x) {
    const T* qx = q + x * qStrideBH;
    const T* kx = k + x * kStrideBH;
    const T* vx = v + x * kStrideBH;
    const T* gox = dout + x * qStrideBH;
#pragma omp parallel num_threads(slice_team(threads, nq, nk, d))
    {
      std::vector<Acc> g(static_cast<std::size_t>(d));  // (d) one gradient row
      // Rows i: P, dP, dS and dQ.
#pragma omp for schedule(static)
      for (std::int64_t i = 0; i < nq; ++i) {
        Acc* prow = p.data() + i * nk;
        Acc* dsrow = ds.data() + i * nk;
        Acc* trow = t.empty() ? nullptr : t.data() + i * nk;
        const RowSoftmax row = probability_row(mask, mods, x, i, nq, nk, d, scale, qx, kx, prow, trow);
        const T* goi = gox + i * d;
        // forward: O = (P o Z / (1 - dropout_p)) V  =>  dP = (dO V^T) o Z / (1 - dropout_p)
        Acc rowdot = 0;  // D_i = sum_j dP_ij P_ij = rowsum(dO o O)_i
        for (std::int64_t j = 0; j < nk; ++j) {
          if (prow[j] == 0) {  // hidden (or underflowed) pairs contribute nothing to any gradient
            dsrow[j] = 0;
            continue;
          }
          const T* vj = vx + j * d;
          Acc dp = 0;
          for (std::int64_t c = 0; c < d; ++c) dp += static_cast<Acc>(goi[c]) * static_cast<Acc>(vj[c]);
          dsrow[j] = dp * dropout_factor(mods, x, i, j);
          rowdot += dsrow[j] * prow[j];
        }
        // forward: P = exp(S) / (exp(sink) + sum_j exp(S_j))  =>  dS = P o (dP - D), and
        // d sink = -P_sink D (the sink has no value row, so its dP is 0)
        sink_terms[static_cast<std::size_t>(i)] = row.sink_probability(mods.sink(x)) * rowdot;
        for (std::int64_t j = 0; j < nk; ++j) dsrow[j] = prow[j] * (dsrow[j] - rowdot);
        // forward: S = c tanh(s q.k / c)  =>  dS_raw = dS (1 - t^2)   (ALiBi's bias is a constant)
        if (trow != nullptr) {
          for (std::int64_t j = 0; j < nk; ++j) dsrow[j] *= 1 - trow[j] * trow[j];
        }
        // forward: S = s Q K^T  =>  dQ = s dS K
        std::fill(g.begin(), g.end(), Acc{0});
        for (std::int64_t j = 0; j < nk; ++j) {
          if (dsrow[j] == 0) continue;
          const T* kj = kx + j * d;
          for (std::int64_t c = 0; c < d; ++c) g[c] += s * dsrow[j] * static_cast<Acc>(kj[c]);
        }
        T* dqi = dq + x * qStrideBH + i * d;
        for (std::int64_t c = 0; c < d; ++c) dqi[c] = static_cast<T>(g[c]);
        // The key loop below needs P only for dV: P o Z / (1 - dropout_p) from here on.
        if (mods.dropout_p > 0) {
          for (std::int64_t j = 0; j < nk; ++j) prow[j] *= dropout_factor(mods, x, i, j);
        }
      }
      // Keys j, in blocks: forward: O = (P o Z / (1 - p)) V  =>  dV = (P o Z / (1 - p))^T dO;
      // forward: S = s Q K^T  =>  dK = s dS^T Q.
      std::vector<Acc> gk(static_cast<std::size_t>(kKeyBlock * d));  // (kKeyBlock, d)
      std::vector<Acc> gv(static_cast<std::size_t>(kKeyBlock * d));  // (kKeyBlock, d)
#pragma omp for schedule(static)
      for (std::int64_t jb = 0; jb < key_blocks; ++jb) {
        const std::int64_t j0 = jb * kKeyBlock, j1 = std::min(nk, j0 + kKeyBlock);
        std::fill(gk.begin(), gk.end(), Acc{0});
        std::fill(gv.begin(), gv.end(), Acc{0});
        for (std::int64_t i = 0; i < nq; ++i) {
          const T* qi = qx + i * d;
          const T* goi = gox + i * d;
          for (std::int64_t j = j0; j < j1; ++j) {
            const Acc pij = p[i * nk + j], dsij = ds[i * nk + j];
            if (pij == 0 && dsij == 0) continue;  // hidden, underflowed, or dropped without gradient
            Acc* gkj = gk.data() + (j - j0) * d;
            Acc* gvj = gv.data() + (j - j0) * d;
            for (std::int64_t c = 0; c < d; ++c) {
              gvj[c] += pij * static_cast<Acc>(goi[c]);
              gkj[c] += s * dsij * static_cast<Acc>(qi[c]);
            }
          }
        }
        for (std::int64_t e = 0; e < (j1 - j0) * d; ++e) {
          dk[x * kStrideBH + j0 * d + e] = static_cast<T>(gk[e]);
          dv[x * kStrideBH + j0 * d + e] = static_cast<T>(gv[e]);
        }
      }
    }
    if (mods.dsinks != nullptr) {  // d sink = -sum_i P_i,sink D_i, summed in row order
      Acc sum = 0;
      for (Acc term : sink_terms) sum += term;
      mods.dsinks[x] = -sum;
    }
  }
}

}  // namespace

template <class T>
void naive_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                             const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options) {
  detail::check_forward_args("naive_attention_forward", shape, mask, scale, q, k, v, out, stats, options);
  detail::require_features("naive_attention_forward", shape, options.features, kAllAttentionFeatures);
  detail::forward_features(
      "naive_attention_forward", shape, mask, q, k, v, out, stats, options,
      [&](const AttentionShape& slice, const T* sq, const T* sk, const T* sv, T* sout, RowStats<T>* sstats,
          const detail::ScoreMods& mods) {
        detail::forward_with_nonfinite(slice, mask, sq, sk, sv, sout, sstats, detail::resolve_threads(options),
                                       [&](const T* qf, const T* kf, const T* vf) { naive_forward(slice, mask, scale, qf, kf, vf, sout, sstats, options, mods); });
      });
}

template <class T>
void naive_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                              const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk,
                              T* dv, const AttentionOptions& options) {
  detail::check_backward_args("naive_attention_backward", shape, mask, scale, q, k, v, out, stats, dout, dq, dk, dv,
                              options);
  detail::require_features("naive_attention_backward", shape, options.features, kAllAttentionFeatures);
  detail::backward_features(
      "naive_attention_backward", shape, mask, q, k, v, out, stats, dout, dq, dk, dv, options,
      [&](const AttentionShape& slice, const T* sq, const T* sk, const T* sv, const T* sout, const RowStats<T>* sstats,
          const T* sdout, T* sdq, T* sdk, T* sdv, const detail::ScoreMods& mods) {
        detail::backward_with_nonfinite(
            slice, mask, sq, sk, sv, sout, sstats, sdout, sdq, sdk, sdv, detail::resolve_threads(options),
            [&](const T* qf, const T* kf, const T* vf, const T* of, const RowStats<T>* sf, const T* gf) { naive_backward(slice, mask, scale, qf, kf, vf, of, sf, gf, sdq, sdk, sdv, options, mods); });
      });
}

#define PED_INSTANTIATE(T)                                                                                        \
  template void naive_attention_forward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*,    \
                                           T*, RowStats<T>*, const AttentionOptions&);                             \
  template void naive_attention_backward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*,   \
                                            const T*, const RowStats<T>*, const T*, T*, T*, T*,                    \
                                            const AttentionOptions&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped
