// Non-finite inputs: the checks, the zeroed copies and the NaN marking (variants/nonfinite.hpp).
// B batch, H heads, Nq/Nk query/key tokens, d head dim. Per (b, h) slice, with V_i the keys visible
// to query i (Mask::row_intervals) and only rows with V_i non-empty taking part:
//   forward:  poisoned_i = q_i or some k_j (j in V_i) non-finite   -> out_i, stats_i NaN
//             otherwise some v_jc (j in V_i) non-finite            -> out_ic NaN
//   backward: P_i bad    = poisoned_i or stats_i non-finite
//             dS_i bad   = P_i bad, or dout_i, out_i or some v_j (j in V_i) non-finite
//             dS_i bad -> dq_i and dk_j (j in V_i) NaN;  P_i bad -> dv_j (j in V_i) NaN;
//             dout_ic non-finite -> dv_jc (j in V_i) NaN
// Counts over V_i come from prefix sums over the keys, marks onto keys from difference arrays, so
// the work is O(Nq (intervals per row) + Nk) per slice, times d where components matter.
#include "variants/nonfinite.hpp"

#include <cmath>
#include <limits>

#include "variants/kernels.hpp"

namespace ped::detail {

namespace {

template <class T>
bool row_finite(const T* x, std::int64_t d) {
  for (std::int64_t c = 0; c < d; ++c) {
    if (!std::isfinite(x[c])) return false;
  }
  return true;
}

// counts[j] = number of rows r < j with bad[r]; counts has n + 1 entries.
std::vector<std::int64_t> prefix_counts(const std::vector<std::uint8_t>& bad) {
  std::vector<std::int64_t> counts(bad.size() + 1, 0);
  for (std::size_t j = 0; j < bad.size(); ++j) counts[j + 1] = counts[j] + bad[j];
  return counts;
}

std::int64_t count_in(const std::vector<std::int64_t>& prefix, const std::vector<KeyInterval>& ivs,
                      std::int64_t stride = 1, std::int64_t offset = 0) {
  std::int64_t n = 0;
  for (const KeyInterval& iv : ivs) n += prefix[iv.hi * stride + offset] - prefix[iv.lo * stride + offset];
  return n;
}

// Adds 1 over every interval of ivs to a difference array (n + 1 entries).
void mark_intervals(std::vector<std::int64_t>& diff, const std::vector<KeyInterval>& ivs) {
  for (const KeyInterval& iv : ivs) {
    ++diff[iv.lo];
    --diff[iv.hi];
  }
}

template <class T>
void fill_nan(T* x, std::int64_t n) {
  std::fill(x, x + n, std::numeric_limits<T>::quiet_NaN());
}

}  // namespace

template <class T>
bool all_finite(const T* x, std::int64_t n, int threads) {
  // 0 * x is +-0 for finite x and NaN for NaN or +-inf; a NaN survives the sum.
  T acc = 0;
#pragma omp parallel for simd reduction(+ : acc) num_threads(team(threads, n >> 18)) schedule(static)
  for (std::int64_t e = 0; e < n; ++e) acc += x[e] * T{0};
  return acc == T{0};
}

template <class T>
bool stats_finite(const RowStats<T>* stats, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const RowStats<T>& s = stats[i];
    const bool no_key = s.max == -std::numeric_limits<T>::infinity() && s.inv_sum == T{0};
    if (!no_key && !(std::isfinite(s.max) && std::isfinite(s.inv_sum))) return false;
  }
  return true;
}

template <class T>
std::vector<T> finite_copy(const T* x, std::int64_t n) {
  std::vector<T> c(x, x + n);
  for (T& e : c) {
    if (!std::isfinite(e)) e = T{0};
  }
  return c;
}

template <class T>
void mark_forward(const AttentionShape& shape, const Mask& mask, const T* q, const T* k, const T* v, T* out,
                  RowStats<T>* stats) {
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  std::vector<KeyInterval> ivs;
  for (std::int64_t x = 0; x < shape.batch * shape.heads; ++x) {
    const T* qx = q + x * nq * d;
    const T* kx = k + x * nk * d;
    const T* vx = v + x * nk * d;
    std::vector<std::uint8_t> bad_k(static_cast<std::size_t>(nk));
    std::vector<std::int64_t> bad_v((nk + 1) * d, 0);  // prefix counts per component, [j * d + c]
    bool any_bad_v = false;
    for (std::int64_t j = 0; j < nk; ++j) {
      bad_k[j] = !row_finite(kx + j * d, d);
      for (std::int64_t c = 0; c < d; ++c) {
        const bool b = !std::isfinite(vx[j * d + c]);
        any_bad_v = any_bad_v || b;
        bad_v[(j + 1) * d + c] = bad_v[j * d + c] + b;
      }
    }
    const std::vector<std::int64_t> k_prefix = prefix_counts(bad_k);
    for (std::int64_t i = 0; i < nq; ++i) {
      mask.row_intervals(i, nq, nk, ivs);
      if (ivs.empty()) continue;
      T* oi = out + (x * nq + i) * d;
      if (!row_finite(qx + i * d, d) || count_in(k_prefix, ivs) > 0) {
        fill_nan(oi, d);
        stats[x * nq + i] = RowStats<T>{std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::quiet_NaN()};
        continue;
      }
      if (!any_bad_v) continue;
      for (std::int64_t c = 0; c < d; ++c) {
        if (count_in(bad_v, ivs, d, c) > 0) oi[c] = std::numeric_limits<T>::quiet_NaN();
      }
    }
  }
}

template <class T>
void mark_backward(const AttentionShape& shape, const Mask& mask, const T* q, const T* k, const T* v, const T* out,
                   const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv) {
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  std::vector<KeyInterval> ivs;
  for (std::int64_t x = 0; x < shape.batch * shape.heads; ++x) {
    const T* kx = k + x * nk * d;
    const T* vx = v + x * nk * d;
    std::vector<std::uint8_t> bad_k(static_cast<std::size_t>(nk)), bad_v(static_cast<std::size_t>(nk));
    for (std::int64_t j = 0; j < nk; ++j) {
      bad_k[j] = !row_finite(kx + j * d, d);
      bad_v[j] = !row_finite(vx + j * d, d);
    }
    const std::vector<std::int64_t> k_prefix = prefix_counts(bad_k), v_prefix = prefix_counts(bad_v);
    std::vector<std::int64_t> dk_marks(static_cast<std::size_t>(nk + 1), 0), dv_marks(dk_marks);
    std::vector<std::int64_t> dv_component_marks;  // (Nk + 1, d) difference arrays, allocated on first use
    for (std::int64_t i = 0; i < nq; ++i) {
      mask.row_intervals(i, nq, nk, ivs);
      if (ivs.empty()) continue;
      const std::int64_t row = x * nq + i;
      const T* gi = dout + row * d;
      const bool p_bad = !row_finite(q + row * d, d) || count_in(k_prefix, ivs) > 0 || !stats_finite(stats + row, 1);
      const bool dout_bad = !row_finite(gi, d);
      const bool ds_bad = p_bad || dout_bad || !row_finite(out + row * d, d) || count_in(v_prefix, ivs) > 0;
      if (ds_bad) {
        fill_nan(dq + row * d, d);
        mark_intervals(dk_marks, ivs);
      }
      if (p_bad) {
        mark_intervals(dv_marks, ivs);
      } else if (dout_bad) {
        if (dv_component_marks.empty()) dv_component_marks.assign(static_cast<std::size_t>((nk + 1) * d), 0);
        for (std::int64_t c = 0; c < d; ++c) {
          if (std::isfinite(gi[c])) continue;
          for (const KeyInterval& iv : ivs) {
            ++dv_component_marks[iv.lo * d + c];
            --dv_component_marks[iv.hi * d + c];
          }
        }
      }
    }
    std::int64_t in_dk = 0, in_dv = 0;
    std::vector<std::int64_t> in_dv_c(static_cast<std::size_t>(d), 0);
    for (std::int64_t j = 0; j < nk; ++j) {
      in_dk += dk_marks[j];
      in_dv += dv_marks[j];
      T* dkj = dk + (x * nk + j) * d;
      T* dvj = dv + (x * nk + j) * d;
      if (in_dk > 0) fill_nan(dkj, d);
      if (in_dv > 0) fill_nan(dvj, d);
      if (dv_component_marks.empty()) continue;
      for (std::int64_t c = 0; c < d; ++c) {
        in_dv_c[c] += dv_component_marks[j * d + c];
        if (in_dv_c[c] > 0) dvj[c] = std::numeric_limits<T>::quiet_NaN();
      }
    }
  }
}

template <class T>
void mark_dsinks(const AttentionShape& shape, const Mask& mask, const T* q, const T* k, const T* out,
                 const RowStats<T>* stats, const T* dout, double* dsinks, int threads) {
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim, bh = shape.batch * shape.heads;
  if (all_finite(q, bh * nq * d, threads) && all_finite(k, bh * nk * d, threads) &&
      all_finite(out, bh * nq * d, threads) && all_finite(dout, bh * nq * d, threads) && stats_finite(stats, bh * nq)) {
    return;
  }
  std::vector<KeyInterval> ivs;
  for (std::int64_t x = 0; x < bh; ++x) {
    const T* kx = k + x * nk * d;
    std::vector<std::uint8_t> bad_k(static_cast<std::size_t>(nk));
    for (std::int64_t j = 0; j < nk; ++j) bad_k[j] = !row_finite(kx + j * d, d);
    const std::vector<std::int64_t> k_prefix = prefix_counts(bad_k);
    for (std::int64_t i = 0; i < nq; ++i) {
      const std::int64_t row = x * nq + i;
      bool bad = !stats_finite(stats + row, 1) || !row_finite(out + row * d, d) || !row_finite(dout + row * d, d);
      if (!bad) {
        mask.row_intervals(i, nq, nk, ivs);
        bad = !ivs.empty() && (!row_finite(q + row * d, d) || count_in(k_prefix, ivs) > 0);
      }
      if (bad) {
        dsinks[x] = std::numeric_limits<double>::quiet_NaN();
        break;
      }
    }
  }
}

#define PED_INSTANTIATE(T)                                                                                        \
  template bool all_finite<T>(const T*, std::int64_t, int);                                                     \
  template bool stats_finite<T>(const RowStats<T>*, std::int64_t);                                              \
  template std::vector<T> finite_copy<T>(const T*, std::int64_t);                                               \
  template void mark_forward<T>(const AttentionShape&, const Mask&, const T*, const T*, const T*, T*,            \
                                RowStats<T>*);                                                                  \
  template void mark_backward<T>(const AttentionShape&, const Mask&, const T*, const T*, const T*, const T*,    \
                                 const RowStats<T>*, const T*, T*, T*, T*);                                   \
  template void mark_dsinks<T>(const AttentionShape&, const Mask&, const T*, const T*, const T*,               \
                               const RowStats<T>*, const T*, double*, int);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::detail
