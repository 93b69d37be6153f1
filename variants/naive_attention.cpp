// Naive attention: the algorithmic reference. B batch, H heads, Nq/Nk query/key tokens, d head dim,
// s scale, o = Nk - Nq. Per (b, h) it materialises S and P (Nq, Nk) in double (the wider type, so
// the reference is more accurate than the variants checked against it), with plain loops and
// the element-wise Mask::visible. Parallel over (b, h); no BLAS.
#include "variants/naive_attention.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "variants/kernels.hpp"

namespace ped {

namespace {

using Acc = double;
constexpr Acc kNegInf = -std::numeric_limits<Acc>::infinity();

// P (Nq, Nk) <- softmax_rows(s Q K^T + M) for one (b, h); lse (Nq) in Acc. Rows without a visible
// key get P = 0 and lse = -inf.
template <class T>
void probabilities(const Mask& mask, std::int64_t nq, std::int64_t nk, std::int64_t d, T scale, const T* q,
                   const T* k, Acc* p, Acc* lse) {
  for (std::int64_t i = 0; i < nq; ++i) {
    Acc* prow = p + i * nk;
    const T* qi = q + i * d;
    Acc m = kNegInf;
    for (std::int64_t j = 0; j < nk; ++j) {
      if (!mask.visible(i, j, nq, nk)) {
        prow[j] = kNegInf;
        continue;
      }
      const T* kj = k + j * d;
      Acc dot = 0;
      for (std::int64_t c = 0; c < d; ++c) dot += static_cast<Acc>(qi[c]) * static_cast<Acc>(kj[c]);
      prow[j] = static_cast<Acc>(scale) * dot;  // S_ij = s q_i . k_j
      m = std::max(m, prow[j]);
    }
    if (m == kNegInf) {  // no visible key: exp(-inf - (-inf)) would be NaN, so the row is set to 0
      for (std::int64_t j = 0; j < nk; ++j) prow[j] = 0;
      lse[i] = kNegInf;
      continue;
    }
    Acc sum = 0;
    for (std::int64_t j = 0; j < nk; ++j) {
      prow[j] = std::exp(prow[j] - m);  // shifted by the row max: scores of +-1e4 cannot overflow
      sum += prow[j];
    }
    for (std::int64_t j = 0; j < nk; ++j) prow[j] /= sum;
    lse[i] = m + std::log(sum);
  }
}

}  // namespace

template <class T>
void naive_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                             const T* v, T* out, T* lse, const AttentionOptions& options) {
  detail::check_forward_args("naive_attention_forward", shape, mask, scale, q, k, v, out, lse, options);
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t qStrideBH = nq * d, kStrideBH = nk * d;  // elements per (b, h) slice
  const int threads = detail::resolve_threads(options);

#pragma omp parallel num_threads(detail::team(threads, bh))
  {
    std::vector<Acc> p(static_cast<std::size_t>(nq * nk));  // (Nq, Nk) probabilities
    std::vector<Acc> l(static_cast<std::size_t>(nq));       // (Nq) log-sum-exp
    std::vector<Acc> o(static_cast<std::size_t>(d));        // (d) one output row
#pragma omp for schedule(dynamic)
    for (std::int64_t x = 0; x < bh; ++x) {
      const T* qx = q + x * qStrideBH;
      const T* kx = k + x * kStrideBH;
      const T* vx = v + x * kStrideBH;
      probabilities(mask, nq, nk, d, scale, qx, kx, p.data(), l.data());
      for (std::int64_t i = 0; i < nq; ++i) {
        // O_i = sum_j P_ij v_j
        std::fill(o.begin(), o.end(), Acc{0});
        const Acc* prow = p.data() + i * nk;
        for (std::int64_t j = 0; j < nk; ++j) {
          const Acc pij = prow[j];
          if (pij == 0) continue;
          const T* vj = vx + j * d;
          for (std::int64_t c = 0; c < d; ++c) o[c] += pij * static_cast<Acc>(vj[c]);
        }
        T* orow = out + x * qStrideBH + i * d;
        for (std::int64_t c = 0; c < d; ++c) orow[c] = static_cast<T>(o[c]);
        lse[x * nq + i] = static_cast<T>(l[i]);
      }
    }
  }
}

template <class T>
void naive_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                              const T* v, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv,
                              const AttentionOptions& options) {
  detail::check_backward_args("naive_attention_backward", shape, mask, scale, q, k, v, out, lse, dout, dq, dk, dv,
                              options);
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t qStrideBH = nq * d, kStrideBH = nk * d;
  const int threads = detail::resolve_threads(options);
  const Acc s = static_cast<Acc>(scale);

#pragma omp parallel num_threads(detail::team(threads, bh))
  {
    std::vector<Acc> p(static_cast<std::size_t>(nq * nk));   // (Nq, Nk) probabilities
    std::vector<Acc> ds(static_cast<std::size_t>(nq * nk));  // (Nq, Nk) dP, then dS in place
    std::vector<Acc> l(static_cast<std::size_t>(nq));        // (Nq) log-sum-exp (unused here)
    std::vector<Acc> gq(static_cast<std::size_t>(nq * d));   // (Nq, d) dQ
    std::vector<Acc> gk(static_cast<std::size_t>(nk * d));   // (Nk, d) dK
    std::vector<Acc> gv(static_cast<std::size_t>(nk * d));   // (Nk, d) dV
#pragma omp for schedule(dynamic)
    for (std::int64_t x = 0; x < bh; ++x) {
      const T* qx = q + x * qStrideBH;
      const T* kx = k + x * kStrideBH;
      const T* vx = v + x * kStrideBH;
      const T* gox = dout + x * qStrideBH;
      probabilities(mask, nq, nk, d, scale, qx, kx, p.data(), l.data());
      std::fill(gq.begin(), gq.end(), Acc{0});
      std::fill(gk.begin(), gk.end(), Acc{0});
      std::fill(gv.begin(), gv.end(), Acc{0});
      for (std::int64_t i = 0; i < nq; ++i) {
        const Acc* prow = p.data() + i * nk;
        Acc* dsrow = ds.data() + i * nk;
        const T* goi = gox + i * d;
        Acc rowdot = 0;  // sum_j dP_ij P_ij
        for (std::int64_t j = 0; j < nk; ++j) {
          const Acc pij = prow[j];
          if (pij == 0) {  // hidden (or underflowed) pairs contribute nothing to any gradient
            dsrow[j] = 0;
            continue;
          }
          // forward: O = P V  =>  dV = P^T dO, dP = dO V^T
          const T* vj = vx + j * d;
          Acc* gvj = gv.data() + j * d;
          Acc dp = 0;
          for (std::int64_t c = 0; c < d; ++c) {
            gvj[c] += pij * static_cast<Acc>(goi[c]);
            dp += static_cast<Acc>(goi[c]) * static_cast<Acc>(vj[c]);
          }
          dsrow[j] = dp;
          rowdot += dp * pij;
        }
        // forward: P = softmax_rows(S)  =>  dS = P o (dP - rowsum(dP o P))
        for (std::int64_t j = 0; j < nk; ++j) dsrow[j] = prow[j] * (dsrow[j] - rowdot);
        // forward: S = s Q K^T  =>  dQ = s dS K, dK = s dS^T Q
        const T* qi = qx + i * d;
        Acc* gqi = gq.data() + i * d;
        for (std::int64_t j = 0; j < nk; ++j) {
          const Acc dsij = dsrow[j];
          if (dsij == 0) continue;
          const T* kj = kx + j * d;
          Acc* gkj = gk.data() + j * d;
          for (std::int64_t c = 0; c < d; ++c) {
            gqi[c] += s * dsij * static_cast<Acc>(kj[c]);
            gkj[c] += s * dsij * static_cast<Acc>(qi[c]);
          }
        }
      }
      for (std::int64_t e = 0; e < qStrideBH; ++e) dq[x * qStrideBH + e] = static_cast<T>(gq[e]);
      for (std::int64_t e = 0; e < kStrideBH; ++e) {
        dk[x * kStrideBH + e] = static_cast<T>(gk[e]);
        dv[x * kStrideBH + e] = static_cast<T>(gv[e]);
      }
    }
  }
}

#define PED_INSTANTIATE(T)                                                                                        \
  template void naive_attention_forward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*,    \
                                           T*, T*, const AttentionOptions&);                                       \
  template void naive_attention_backward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*,   \
                                            const T*, const T*, const T*, T*, T*, T*, const AttentionOptions&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped
