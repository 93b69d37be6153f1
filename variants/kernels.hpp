// Building blocks shared by the attention variants (internal, not installed):
// argument checks, BLAS wrappers, a vectorisable exp, aligned scratch and tile masking.
//
// B batch, H heads, Nq query tokens, Nk key tokens, d head dim, s scale.
// All matrices are row-major with an explicit leading dimension (ld = elements between rows).
#pragma once

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "variants/attention.hpp"
#include "variants/common.hpp"
#if defined(PED_LIBXSMM)
#include "variants/xsmm_gemm.hpp"
#endif

namespace ped::detail {

// ---- argument checks (defined in attention.cpp) -------------------------------------------------

// Validates sizes, product overflow, pointers, scale, options and mask for a forward call.
template <class T>
void check_forward_args(const char* fn, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                        const T* k, const T* v, const T* out, const RowStats<T>* stats,
                        const AttentionOptions& options);
// Same, plus dout, dq, dk, dv.
template <class T>
void check_backward_args(const char* fn, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                         const T* k, const T* v, const T* out, const RowStats<T>* stats, const T* dout, const T* dq,
                         const T* dk, const T* dv, const AttentionOptions& options);

inline int resolve_threads(const AttentionOptions& o) { return o.threads > 0 ? o.threads : omp_get_max_threads(); }

// Team size for a parallel loop of `units` work items: never more threads than items (a tiny
// problem runs on one thread instead of paying for a team). Results do not depend on it.
inline int team(int threads, std::int64_t units) {
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, units)));
}

// ---- phase timing ---------------------------------------------------------------------------------

// One thread's clock for AttentionOptions::phases: lap(p) adds the time since the previous start()
// or lap() to phase p. Without a sink (phases == nullptr) every call is one pointer test. Create one
// per thread inside a parallel region; the destructor adds the thread's totals to the sink.
class PhaseClock {
 public:
  explicit PhaseClock(PhaseTimes* sink) : sink_(sink) {
    if (sink_ != nullptr) last_ = std::chrono::steady_clock::now();
  }
  ~PhaseClock() {
    if (sink_ == nullptr) return;
    for (std::size_t p = 0; p < kAttentionPhaseCount; ++p) {
      if (local_[p] != 0) std::atomic_ref<std::int64_t>(sink_->ns[p]).fetch_add(local_[p], std::memory_order_relaxed);
    }
  }
  PhaseClock(const PhaseClock&) = delete;
  PhaseClock& operator=(const PhaseClock&) = delete;

  void start() {
    if (sink_ != nullptr) last_ = std::chrono::steady_clock::now();
  }
  void lap(AttentionPhase p) {
    if (sink_ == nullptr) return;
    const auto now = std::chrono::steady_clock::now();
    local_[static_cast<std::size_t>(p)] += std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_).count();
    last_ = now;
  }

 private:
  PhaseTimes* sink_;
  std::chrono::steady_clock::time_point last_{};
  std::array<std::int64_t, kAttentionPhaseCount> local_{};
};

// ---- BLAS ---------------------------------------------------------------------------------------

// OpenBLAS runs single-threaded while one of our OpenMP regions calls it (no oversubscription);
// the previous setting comes back on destruction.
class BlasSingleThreaded {
 public:
  BlasSingleThreaded() : saved_(openblas_get_num_threads()) { openblas_set_num_threads(1); }
  ~BlasSingleThreaded() { openblas_set_num_threads(saved_); }
  BlasSingleThreaded(const BlasSingleThreaded&) = delete;
  BlasSingleThreaded& operator=(const BlasSingleThreaded&) = delete;

 private:
  int saved_;
};

// Built with PED_LIBXSMM (CMake option, ON where LIBXSMM is found) the tile-sized products (every
// dimension up to xsmm::kMaxDim, beta 0 or 1) run on LIBXSMM (variants/xsmm_gemm.hpp), the others on
// OpenBLAS. Either way a shape always takes the same path, whatever the thread count.

// C (m, n) <- alpha A B^T + beta C, A (m, kk), B (n, kk).
inline void gemm_nt(int m, int n, int kk, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
                    float* c, int ldc) {
#if defined(PED_LIBXSMM)
  if (xsmm::handles(m, n, kk, beta)) return xsmm::gemm_nt(m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm_nt(int m, int n, int kk, double alpha, const double* a, int lda, const double* b, int ldb,
                    double beta, double* c, int ldc) {
#if defined(PED_LIBXSMM)
  if (xsmm::handles(m, n, kk, beta)) return xsmm::gemm_nt(m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
// C (m, n) <- alpha A B + beta C, A (m, kk), B (kk, n).
inline void gemm_nn(int m, int n, int kk, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
                    float* c, int ldc) {
#if defined(PED_LIBXSMM)
  if (xsmm::handles(m, n, kk, beta)) return xsmm::gemm_nn(m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm_nn(int m, int n, int kk, double alpha, const double* a, int lda, const double* b, int ldb,
                    double beta, double* c, int ldc) {
#if defined(PED_LIBXSMM)
  if (xsmm::handles(m, n, kk, beta)) return xsmm::gemm_nn(m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
// C (m, n) <- alpha A^T B + beta C, A (kk, m), B (kk, n).
inline void gemm_tn(int m, int n, int kk, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
                    float* c, int ldc) {
#if defined(PED_LIBXSMM)
  if (xsmm::handles(m, n, kk, beta)) return xsmm::gemm_tn(m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm_tn(int m, int n, int kk, double alpha, const double* a, int lda, const double* b, int ldb,
                    double beta, double* c, int ldc) {
#if defined(PED_LIBXSMM)
  if (xsmm::handles(m, n, kk, beta)) return xsmm::gemm_tn(m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}

// ---- exp for x <= 0 -----------------------------------------------------------------------------

// exp(x) for x <= 0 or x = -inf, written so that a `#pragma omp simd` loop vectorises it:
// x = n ln2 + r, n = round(x / ln2), |r| <= ln2 / 2, exp(x) = 2^n * poly(r) with a Taylor polynomial whose
// truncation error is below the type's epsilon (degree 7 for float, 13 for double).
// Hazard: 2^n underflows below the smallest normal; inputs below that return 0 (the true value
// is < 1e-37 for float, < 1e-307 for double, far below the sum it is added to). -inf returns 0.
inline float exp_nonpositive(float x) {
  const float xc = std::max(x, -87.0f);  // -inf -> -87; the result is zeroed below
  // n = round(x log2 e) by the 1.5 * 2^23 trick (floor does not vectorise without -ffast-math);
  // the low mantissa bits of t hold n as an integer.
  const float t = std::fma(xc, 1.44269504088896341f, 12582912.0f);
  const float n = t - 12582912.0f;
  float r = std::fma(n, -0.693359375f, xc);  // ln2 split into an exact high part and a low part
  r = std::fma(n, 2.12194440e-4f, r);
  float p = 1.0f / 5040.0f;
  p = std::fma(p, r, 1.0f / 720.0f);
  p = std::fma(p, r, 1.0f / 120.0f);
  p = std::fma(p, r, 1.0f / 24.0f);
  p = std::fma(p, r, 1.0f / 6.0f);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  const std::int32_t bits = (std::bit_cast<std::int32_t>(t) - 0x4B400000 + 127) << 23;
  const float two_n = std::bit_cast<float>(bits);
  return x < -87.0f ? 0.0f : p * two_n;
}

inline double exp_nonpositive(double x) {
  const double xc = std::max(x, -708.0);
  const double t = std::fma(xc, 1.4426950408889634074, 6755399441055744.0);  // 1.5 * 2^52 trick
  const double n = t - 6755399441055744.0;
  double r = std::fma(n, -6.93145751953125e-1, xc);
  r = std::fma(n, -1.42860682030941723212e-6, r);
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = std::fma(p, r, 1.0 / 479001600.0);
  p = std::fma(p, r, 1.0 / 39916800.0);
  p = std::fma(p, r, 1.0 / 3628800.0);
  p = std::fma(p, r, 1.0 / 362880.0);
  p = std::fma(p, r, 1.0 / 40320.0);
  p = std::fma(p, r, 1.0 / 5040.0);
  p = std::fma(p, r, 1.0 / 720.0);
  p = std::fma(p, r, 1.0 / 120.0);
  p = std::fma(p, r, 1.0 / 24.0);
  p = std::fma(p, r, 1.0 / 6.0);
  p = std::fma(p, r, 0.5);
  p = std::fma(p, r, 1.0);
  p = std::fma(p, r, 1.0);
  const std::int64_t bits = (std::bit_cast<std::int64_t>(t) - 0x4338000000000000 + 1023) << 52;
  const double two_n = std::bit_cast<double>(bits);
  return x < -708.0 ? 0.0 : p * two_n;
}

// ---- tanh, for the soft-cap ---------------------------------------------------------------------

// t = tanh(x) and g = 1 - t^2 (the soft-cap's derivative), vectorisable like exp_nonpositive and
// built on it. With e = exp(-2|x|): |t| = (1 - e) / (1 + e) and g = 4 e / (1 + e)^2, which keeps g
// relatively accurate where t rounds to +-1 (1 - t^2 from the rounded t would be 0 or noise there).
// Below |x| = 1/4, 1 - e cancels (relative error eps e / (1 - e), unbounded as x -> 0), so there
// |t| = |x| (1 + x^2 R(x^2)) from tanh's Taylor series in x^2, whose terms shrink by (2x / pi)^2
// < 1/39 each: 6 terms reach float's epsilon and 11 double's at |x| = 1/4; g = 1 - t^2 (t^2 < 1/16,
// no cancellation). Both branches are computed and one selected, so the loop has no branch.
// Accuracy (variants/tests/exp_test.cpp): at most 3.1 eps relative on t and 4.6 eps on g (float), 2.9 and
// 4.4 eps (double), eps the unit roundoff.
inline float tanh_small(float x2) {  // tanh(x) / x for x^2 = x2 <= 1/16
  float p = -1382.0f / 155925.0f;
  p = std::fma(p, x2, 62.0f / 2835.0f);
  p = std::fma(p, x2, -17.0f / 315.0f);
  p = std::fma(p, x2, 2.0f / 15.0f);
  p = std::fma(p, x2, -1.0f / 3.0f);
  return std::fma(p, x2, 1.0f);
}
inline double tanh_small(double x2) {
  double p = 18888466084.0 / 194896477400625.0;
  p = std::fma(p, x2, -443861162.0 / 1856156927625.0);
  p = std::fma(p, x2, 6404582.0 / 10854718875.0);
  p = std::fma(p, x2, -929569.0 / 638512875.0);
  p = std::fma(p, x2, 21844.0 / 6081075.0);
  p = std::fma(p, x2, -1382.0 / 155925.0);
  p = std::fma(p, x2, 62.0 / 2835.0);
  p = std::fma(p, x2, -17.0 / 315.0);
  p = std::fma(p, x2, 2.0 / 15.0);
  p = std::fma(p, x2, -1.0 / 3.0);
  return std::fma(p, x2, 1.0);
}

template <class T>
inline T tanh_with_grad(T x, T& g) {
  const T ax = std::abs(x);
  const T e = exp_nonpositive(T{-2} * ax);  // exact argument: -2|x| is a power-of-two multiple
  const T one_e = T{1} + e;
  const T big = (T{1} - e) / one_e;
  const T small = ax * tanh_small(x * x);
  const bool is_small = ax < T{0.25};
  const T t = is_small ? small : big;
  g = is_small ? std::fma(-small, small, T{1}) : T{4} * e / (one_e * one_e);
  return std::copysign(t, x);
}

// The score-level features on one row of raw scores s q_i.k_j, keys j0 .. j0 + n (before the mask),
// as variants/attention.hpp defines them, for every kernel:
//   soft-cap (cap > 0, inv_cap = 1 / cap rounded to T): S = cap tanh(S / cap), with g_j = 1 - tanh^2
//     written when g is not null (the backward's dS_raw = dS g);
//   ALiBi (slope != 0): S_j -= slope |p - j|, p the query's key-space position, the bias evaluated in
//     double and rounded once to T.
// The forward and the backward run this same code on the same GEMM result, so their scores are
// bitwise the same.
template <class T>
void modify_score_row(T* row, std::int64_t n, T cap, T inv_cap, double slope, std::int64_t p, std::int64_t j0, T* g) {
  const int cols = static_cast<int>(n);
  if (cap > T{0}) {
    if (g != nullptr) {
#pragma omp simd
      for (int c = 0; c < cols; ++c) {
        T gc;
        row[c] = cap * tanh_with_grad(row[c] * inv_cap, gc);
        g[c] = gc;
      }
    } else {
#pragma omp simd
      for (int c = 0; c < cols; ++c) {
        T gc;
        row[c] = cap * tanh_with_grad(row[c] * inv_cap, gc);
      }
    }
  }
  if (slope != 0) {
    const double pos = static_cast<double>(p - j0);  // p - j0
#pragma omp simd
    for (int c = 0; c < cols; ++c) {
      row[c] = static_cast<T>(static_cast<double>(row[c]) - slope * std::abs(pos - static_cast<double>(c)));
    }
  }
}

// ---- scratch ------------------------------------------------------------------------------------

// 64-byte aligned, uninitialised buffer of n elements (one per thread, reused across tiles).
template <class T>
class Scratch {
 public:
  explicit Scratch(std::size_t n)
      : p_(static_cast<T*>(::operator new(std::max<std::size_t>(n, 1) * sizeof(T), std::align_val_t{64}))) {}
  ~Scratch() { ::operator delete(p_, std::align_val_t{64}); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* data() { return p_; }

 private:
  T* p_;
};

// ---- row kernels --------------------------------------------------------------------------------

template <class T>
inline T row_max(const T* x, std::int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (std::int64_t c = 0; c < n; ++c) m = x[c] > m ? x[c] : m;
  return m;
}

// x[c] <- exp(x[c] - m); returns sum_c x[c] accumulated in double. m must be finite.
template <class T>
inline double exp_shift_sum(T* x, std::int64_t n, T m) {
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (std::int64_t c = 0; c < n; ++c) {
    const T e = exp_nonpositive(x[c] - m);
    x[c] = e;
    sum += e;
  }
  return static_cast<double>(sum);
}

// Sets S[r, c] = -inf for every hidden pair of the tile rows [i0, i0 + rows), keys [j0, j0 + cols).
// Called for partial tiles only. Interval masks (none, causal, sliding window) take a per-row
// bound; the others ask Mask::visible per element.
template <class T>
void mask_tile(const Mask& mask, std::int64_t i0, std::int64_t rows, std::int64_t j0, std::int64_t cols,
               std::int64_t seq_q, std::int64_t seq_k, T* s, std::int64_t lds) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  std::int64_t lo = 0, hi = 0;
  if (mask.single_interval(i0, seq_q, seq_k, lo, hi)) {
    for (std::int64_t r = 0; r < rows; ++r) {
      mask.single_interval(i0 + r, seq_q, seq_k, lo, hi);
      const std::int64_t a = std::clamp<std::int64_t>(lo - j0, 0, cols);  // visible columns [a, b)
      const std::int64_t b = std::clamp<std::int64_t>(hi - j0, a, cols);
      T* row = s + r * lds;
      for (std::int64_t c = 0; c < a; ++c) row[c] = ninf;
      for (std::int64_t c = b; c < cols; ++c) row[c] = ninf;
    }
    return;
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    T* row = s + r * lds;
    for (std::int64_t c = 0; c < cols; ++c) {
      if (!mask.visible(i0 + r, j0 + c, seq_q, seq_k)) row[c] = ninf;
    }
  }
}

// D_i = sum_c dO[i, c] O[i, c] for all B H Nq rows, in parallel; accumulated in double.
// D (B, H, Nq); forward: O = P V, so rowsum(dP o P) = rowsum(dO o O).
template <class T>
void rowsum_dout_out(const T* dout, const T* out, std::int64_t rows, std::int64_t d, T* dvec, int threads) {
#pragma omp parallel for num_threads(team(threads, rows * d / 16384)) schedule(static)
  for (std::int64_t i = 0; i < rows; ++i) {
    const T* a = dout + i * d;
    const T* b = out + i * d;
    double acc = 0;
    for (std::int64_t c = 0; c < d; ++c) acc += static_cast<double>(a[c]) * static_cast<double>(b[c]);
    dvec[i] = static_cast<T>(acc);
  }
}

// P (rows, w) <- exp(S - max) * inv_sum row by row, the forward's own normalisation (RowStats); a
// row that sees no key (max = -inf) is set to 0 (-inf - (-inf) would be NaN).
template <class T>
void probs_from_stats(T* s, std::int64_t rows, std::int64_t w, std::int64_t lds, const RowStats<T>* stats) {
  for (std::int64_t r = 0; r < rows; ++r) {
    T* row = s + r * lds;
    const T m = stats[r].max, inv = stats[r].inv_sum;
    if (m == -std::numeric_limits<T>::infinity()) {
      std::fill(row, row + w, T{0});
      continue;
    }
#pragma omp simd
    for (std::int64_t c = 0; c < w; ++c) row[c] = exp_nonpositive(row[c] - m) * inv;
  }
}

// dS <- P o (dP - D) in place of dP; forward: P = softmax_rows(S).
template <class T>
void softmax_grad(const T* p, T* dp, std::int64_t rows, std::int64_t w, std::int64_t ld, const T* dvec) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* prow = p + r * ld;
    T* row = dp + r * ld;
    const T dr = dvec[r];
#pragma omp simd
    for (std::int64_t c = 0; c < w; ++c) row[c] = prow[c] * (row[c] - dr);
  }
}

// ---- dominated rows ------------------------------------------------------------------------------

// A row whose inv_sum exceeds 1/2 is dominated by one key j*: P_ij* > 1/2 (P_ij <= inv_sum for every
// key, and with the forward's own scores only the key at the row max has exp(S - max) = 1). There
//   dS_ij* = P_ij* (dP_ij* - D_i),  D_i = sum_k P_ik dP_ik = dO_i . O_i
// is a cancellation: dP_ij* and D_i agree to within (1 - P_ij*) |dP|, but dP_ij* comes from a GEMM and
// D_i from a dot product with the forward's O, rounded separately, so their difference holds a few
// ulp(|dP|) of noise where the true value is (1 - P_ij*) |dP|: a relative error ~ eps / (1 - P_ij*),
// unbounded as the row saturates, which dQ_i and dK_j* inherit. With 1 - P_ij* = sum_{k != j*} P_ik,
//   dS_ij* = P_ij* (dP_ij* B_i - A_i),  A_i = sum_{k != j*} P_ik dP_ik,  B_i = sum_{k != j*} P_ik
// has no cancellation beyond the problem's own. The other entries of the row keep softmax_grad's
// value: their error is relative to P_ik |dP|, the size of the entry itself.
// A candidate is an entry with P_ij > 1/2 in a row with inv_sum > 1/2. A row with exactly one gets
// the exact form; a row with several (possible only through rounding ties, or with stats that are
// not the forward's own) keeps softmax_grad's value P_ij (dP_ij - D_i) for each of them.
// The score-level features keep the identity: with sinks the sink's probability is part of
// 1 - P_ij* (no dP: the sink has no value row), so B_i starts at P_i,sink; with dropout dP is the
// dropped, rescaled one, and D_i = sum_k P_ik dP_ik still holds; a soft-cap multiplies the
// candidate's dS by Candidate::factor, as the tile's other entries.

// A_i and B_i of one row, summed over its non-candidate entries, and its candidate count.
struct DominatedRow {
  double a = 0, b = 0;
  std::int64_t candidates = 0;
};

struct Candidate {
  std::int64_t row;  // query index within the (b, h) slice
  std::int64_t key;  // key index within the (b, h) slice
  double p, dp;      // P_ij, dP_ij
  double ds = 0;     // the dS_ij every gradient uses, once the row is complete
  // dS_ij's factor from the score to the raw score s q_i.k_j: 1 - t^2 under a soft-cap (variants/
  // tile_ops.hpp), 1 otherwise (then ds is unchanged by it, bit for bit).
  double factor = 1;
};

// True when some row of stats (n rows) is dominated (inv_sum > 1/2): only then is any of this needed.
template <class T>
bool any_dominated(const RowStats<T>* stats, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    if (stats[i].inv_sum > T{0.5}) return true;
  }
  return false;
}

// Before softmax_grad, for a (rows, w) tile of P and dP (row offset ld) of query rows i0 .. and keys
// j0 ..: adds the tile's non-candidate terms to A_i, B_i (state: the tile's rows) and appends its
// candidates in row-major order.
template <class T>
void dominated_scan(const T* p, const T* dp, std::int64_t rows, std::int64_t w, std::int64_t ld, std::int64_t i0,
                    std::int64_t j0, const RowStats<T>* stats, DominatedRow* state, std::vector<Candidate>& found) {
  for (std::int64_t r = 0; r < rows; ++r) {
    if (!(stats[r].inv_sum > T{0.5})) continue;
    const T* prow = p + r * ld;
    const T* dprow = dp + r * ld;
    double a = 0, b = 0;
    for (std::int64_t c = 0; c < w; ++c) {
      if (prow[c] > T{0.5}) {
        ++state[r].candidates;
        found.push_back({i0 + r, j0 + c, static_cast<double>(prow[c]), static_cast<double>(dprow[c])});
        continue;
      }
      a += static_cast<double>(prow[c]) * static_cast<double>(dprow[c]);
      b += static_cast<double>(prow[c]);
    }
    state[r].a += a;
    state[r].b += b;
  }
}

// Once the candidates' rows are complete: their dS, with state_of(row) the A_i, B_i of a row and
// d_of(row) its D. Sorted by (row, key), whatever order the tiles found them in.
template <class T, class StateOf, class DOf>
void dominated_finish_with(std::vector<Candidate>& found, StateOf state_of, DOf d_of) {
  std::stable_sort(found.begin(), found.end(), [](const Candidate& x, const Candidate& y) {
    return x.row != y.row ? x.row < y.row : x.key < y.key;
  });
  for (Candidate& c : found) {
    const DominatedRow& st = state_of(c.row);
    if (st.candidates == 1) {
      c.ds = c.p * (c.dp * st.b - st.a) * c.factor;
    } else {
      // softmax_grad's value, in T as it computes it
      const T p = static_cast<T>(c.p), dp = static_cast<T>(c.dp);
      c.ds = static_cast<double>(p * (dp - d_of(c.row))) * c.factor;
    }
  }
}

// The same with state and dvec indexed by row - i0 (the rows of one tile row).
template <class T>
void dominated_finish(std::vector<Candidate>& found, std::int64_t i0, const DominatedRow* state, const T* dvec) {
  dominated_finish_with<T>(
      found, [&](std::int64_t row) -> const DominatedRow& { return state[row - i0]; },
      [&](std::int64_t row) { return dvec[row - i0]; });
}

// The same with A_i, B_i kept per tile row of tile_q rows: state[br] holds rows br tile_q .. (empty
// for a tile row without a dominated row, which holds no candidate); dvec the D of the slice's rows.
template <class T>
void dominated_finish_tiled(std::vector<Candidate>& found, std::int64_t tile_q,
                            const std::vector<std::vector<DominatedRow>>& state, const T* dvec) {
  dominated_finish_with<T>(
      found,
      [&](std::int64_t row) -> const DominatedRow& {
        const std::int64_t br = row / tile_q;
        return state[static_cast<std::size_t>(br)][static_cast<std::size_t>(row - br * tile_q)];
      },
      [&](std::int64_t row) { return dvec[row]; });
}

// dS[row - i0, key - j0] <- the candidate's dS for the candidates inside a (rows, w) tile (ld).
template <class T>
void dominated_put(const std::vector<Candidate>& found, std::int64_t i0, std::int64_t rows, std::int64_t j0,
                   std::int64_t w, T* ds, std::int64_t ld) {
  for (const Candidate& c : found) {
    if (c.row < i0 || c.row >= i0 + rows || c.key < j0 || c.key >= j0 + w) continue;
    ds[(c.row - i0) * ld + (c.key - j0)] = static_cast<T>(c.ds);
  }
}

// ds[row - i0, key - j0] <- 0 for the candidates inside a (rows, w) tile (ld): their dS enters the
// gradients apart, once their row is complete (dominated_add_dq, dominated_add_dk).
template <class T>
void dominated_zero(const std::vector<Candidate>& found, std::int64_t i0, std::int64_t rows, std::int64_t j0,
                    std::int64_t w, T* ds, std::int64_t ld) {
  for (const Candidate& c : found) {
    if (c.row < i0 || c.row >= i0 + rows || c.key < j0 || c.key >= j0 + w) continue;
    ds[(c.row - i0) * ld + (c.key - j0)] = T{0};
  }
}

// dk_j* += s dS_ij* q_i for each candidate with key in [j0, j1), in the order of `found` (sorted by
// row, then key: for each key its rows in order): the dK term the tiles left out. dk (Nk, d) and
// q (Nq, d) of the slice.
template <class T>
void dominated_add_dk(const std::vector<Candidate>& found, std::int64_t j0, std::int64_t j1, std::int64_t d, T scale,
                      const T* q, T* dk) {
  for (const Candidate& c : found) {
    if (c.key < j0 || c.key >= j1) continue;
    const T g = static_cast<T>(c.ds) * scale;
    const T* qi = q + c.row * d;
    T* dkj = dk + c.key * d;
    for (std::int64_t e = 0; e < d; ++e) dkj[e] += g * qi[e];
  }
}

// dq_i += s dS_ij* k_j* for each candidate (rows in order): the dQ term the tiles left out.
// dq (Nq, d) and k (Nk, d) of the slice.
template <class T>
void dominated_add_dq(const std::vector<Candidate>& found, std::int64_t d, T scale, const T* k, T* dq) {
  for (const Candidate& c : found) {
    const T g = static_cast<T>(c.ds) * scale;
    const T* kj = k + c.key * d;
    T* dqi = dq + c.row * d;
    for (std::int64_t e = 0; e < d; ++e) dqi[e] += g * kj[e];
  }
}

}  // namespace ped::detail
