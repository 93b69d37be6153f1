// A user's own attention kernel, written against pedestrian's in-process API (variants/registry.hpp):
// plain loops, scores and sums in double, one (batch, head) at a time. B batch, H heads, Nq queries,
// Nk keys, d head dim, s scale; tensors row-major [B, H, N, d].
//   forward:  S_ij = s q_i . k_j over visible pairs, m_i = max_j S_ij, l_i = sum_j exp(S_ij - m_i),
//             out_i = sum_j exp(S_ij - m_i) v_j / l_i; row stats {max = m_i, inv_sum = 1 / l_i}
//   backward: P_ij = exp(S_ij - m_i) inv_sum_i, D_i = dout_i . out_i, dP_ij = dout_i . v_j,
//             dS_ij = P_ij (dP_ij - D_i), dq_i = s sum_j dS_ij k_j, dk_j = s sum_i dS_ij q_i,
//             dv_j = sum_i P_ij dout_i
#pragma once

#include <variants/registry.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace my {

template <class T>
double score(const ped::AttentionShape& s, double scale, const T* q, const T* k, std::int64_t i, std::int64_t j) {
  double dot = 0;
  for (std::int64_t c = 0; c < s.head_dim; ++c) dot += static_cast<double>(q[i * s.head_dim + c]) * k[j * s.head_dim + c];
  return scale * dot;
}

template <class T>
void attention_forward(const ped::AttentionShape& s, const ped::Mask& mask, T scale, const T* q, const T* k, const T* v,
                       T* out, ped::RowStats<T>* stats, const ped::AttentionOptions&) {
  const std::int64_t d = s.head_dim, nq = s.seq_q, nk = s.seq_k;
  std::vector<double> p(static_cast<std::size_t>(nk));
  for (std::int64_t bh = 0; bh < s.batch * s.heads; ++bh) {
    const T *qh = q + bh * nq * d, *kh = k + bh * nk * d, *vh = v + bh * nk * d;
    for (std::int64_t i = 0; i < nq; ++i) {
      T* o = out + (bh * nq + i) * d;
      double max = -std::numeric_limits<double>::infinity(), sum = 0;
      for (std::int64_t j = 0; j < nk; ++j) {
        p[j] = mask.visible(i, j, nq, nk) ? score(s, scale, qh, kh, i, j) : -std::numeric_limits<double>::infinity();
        max = std::max(max, p[j]);
      }
      if (max == -std::numeric_limits<double>::infinity()) {  // a query that sees no key
        for (std::int64_t c = 0; c < d; ++c) o[c] = 0;
        stats[bh * nq + i] = {};
        continue;
      }
      for (std::int64_t j = 0; j < nk; ++j) sum += p[j] = std::exp(p[j] - max);
      for (std::int64_t c = 0; c < d; ++c) {
        double acc = 0;
        for (std::int64_t j = 0; j < nk; ++j) acc += p[j] * vh[j * d + c];
        o[c] = static_cast<T>(acc / sum);
      }
      stats[bh * nq + i] = {static_cast<T>(max), static_cast<T>(1 / sum)};
    }
  }
}

template <class T>
void attention_backward(const ped::AttentionShape& s, const ped::Mask& mask, T scale, const T* q, const T* k,
                        const T* v, const T* out, const ped::RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv,
                        const ped::AttentionOptions&) {
  const std::int64_t d = s.head_dim, nq = s.seq_q, nk = s.seq_k;
  for (std::int64_t bh = 0; bh < s.batch * s.heads; ++bh) {
    const T *qh = q + bh * nq * d, *kh = k + bh * nk * d, *vh = v + bh * nk * d;
    const T *oh = out + bh * nq * d, *doh = dout + bh * nq * d;
    std::vector<double> gq(nq * d), gk(nk * d), gv(nk * d);
    for (std::int64_t i = 0; i < nq; ++i) {
      const ped::RowStats<T> st = stats[bh * nq + i];
      if (st.max == -std::numeric_limits<T>::infinity()) continue;  // sees no key: no gradient
      double rowsum = 0;
      for (std::int64_t c = 0; c < d; ++c) rowsum += static_cast<double>(doh[i * d + c]) * oh[i * d + c];
      for (std::int64_t j = 0; j < nk; ++j) {
        if (!mask.visible(i, j, nq, nk)) continue;
        const double p = std::exp(score(s, scale, qh, kh, i, j) - st.max) * st.inv_sum;
        double dp = 0;
        for (std::int64_t c = 0; c < d; ++c) {
          dp += static_cast<double>(doh[i * d + c]) * vh[j * d + c];
          gv[j * d + c] += p * doh[i * d + c];
        }
        const double ds = p * (dp - rowsum);
        for (std::int64_t c = 0; c < d; ++c) {
          gq[i * d + c] += scale * ds * kh[j * d + c];
          gk[j * d + c] += scale * ds * qh[i * d + c];
        }
      }
    }
    for (std::int64_t e = 0; e < nq * d; ++e) dq[bh * nq * d + e] = static_cast<T>(gq[e]);
    for (std::int64_t e = 0; e < nk * d; ++e) {
      dk[bh * nk * d + e] = static_cast<T>(gk[e]);
      dv[bh * nk * d + e] = static_cast<T>(gv[e]);
    }
  }
}

// The kernel as an implementation of the registry: a name, forward and backward in both dtypes; every
// mask kind (mask.visible answers for any of them).
inline ped::AttentionImpl my_attention_impl() {
  return {.name = "my_attention",
          .origin = "examples/gate_your_kernel",
          .forward_f32 = attention_forward<float>,
          .forward_f64 = attention_forward<double>,
          .backward_f32 = attention_backward<float>,
          .backward_f64 = attention_backward<double>};
}

}  // namespace my
