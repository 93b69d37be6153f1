// Scaled dot-product attention kernels, forward and backward: one API over four variants.
//
// B batch, H heads, Nq query tokens, Nk key tokens, d head dim, s scale.
// Every tensor is a contiguous row-major buffer (LibTorch's default layout):
//   q    (B, H, Nq, d)      k, v   (B, H, Nk, d)
//   out  (B, H, Nq, d)      lse    (B, H, Nq)   log-sum-exp of each scaled, masked score row
//   dout (B, H, Nq, d)      dq (B, H, Nq, d), dk, dv (B, H, Nk, d)
// Math per (b, h), with M the mask (-inf where key j is hidden from query i):
//   forward:  S = s Q K^T + M (Nq, Nk), P = softmax_rows(S), O = P V, lse_i = log sum_j exp(S_ij)
//   backward: dV = P^T dO, dP = dO V^T, dS = P o (dP - rowsum(dO o O)), dQ = s dS K, dK = s dS^T Q
// A query row with no visible key gets out row 0, lse = -inf and zero gradients, never NaN.
// Numerics: scores are shifted by their row max, so scores of +-1e4 neither overflow nor underflow.
// The tiled backward passes recompute P = exp(S - lse) from the stored lse; in float that inherits
// lse's rounding (ulp(|lse|) / 2 absolute, about 5e-4 when |lse| ~ 1e4), like FlashAttention.
//
// Variants (all accept every Mask, all give the same results up to rounding):
//   naive    materialises S and P (O(Nq Nk) memory) in double; the algorithmic reference
//   blocked  query strips of tile_q rows, scores and softmax of a whole strip with BLAS (O(tile_q Nk) memory)
//   flash    FlashAttention-2: tiles of Q and K/V, online softmax, only lse kept; backward recomputes P
//            from lse (O(tile_q tile_k) memory per thread); tiles the mask leaves empty are skipped
//   sparse   block-sparse over the mask's block layout (block_size x block_size): empty blocks skipped,
//            full blocks computed without element tests, the element mask only in partial blocks
//
// Threads: AttentionOptions::threads (0 = OpenMP's default, omp_get_max_threads()) is honoured by
// every variant. OpenBLAS is set to one thread while our parallel regions run (and restored after),
// so BLAS never oversubscribes; that setting is process-wide, so do not run two attention calls
// concurrently from different threads while also relying on OpenBLAS's own threading elsewhere.
// Results are bitwise identical for any thread count.
//
// Bad input (null pointers, non-positive sizes, sizes whose product overflows, non-finite scale,
// options or mask parameters out of range) throws std::invalid_argument naming the function and
// the offending values.
#pragma once

#include <cstdint>
#include <string>

#include "variants/mask.hpp"

namespace ped {

enum class Variant : std::uint8_t { naive, blocked, flash, sparse };

// "naive", "blocked", "flash", "sparse".
const char* to_string(Variant v);
// The inverse of to_string; throws std::invalid_argument naming the unknown name.
Variant parse_variant(const std::string& name);

struct AttentionShape {
  std::int64_t batch = 1;     // B
  std::int64_t heads = 1;     // H
  std::int64_t seq_q = 1;     // Nq
  std::int64_t seq_k = 1;     // Nk
  std::int64_t head_dim = 1;  // d
};

struct AttentionOptions {
  int threads = 0;             // OpenMP threads; 0 = omp_get_max_threads(); at most 1024
  std::int64_t tile_q = 0;     // blocked, flash: query rows per tile; 0 = the variant's default; at most 4096
  std::int64_t tile_k = 0;     // flash: keys per tile; 0 = the variant's default; at most 4096
  std::int64_t block_size = 64;  // sparse: block side of the block layout, in [1, 4096]
};

// Fills out (B, H, Nq, d) and lse (B, H, Nq). scale is used as given (typically 1 / sqrt(d)) and
// must be finite.
template <class T>
void attention_forward(Variant variant, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                       const T* k, const T* v, T* out, T* lse, const AttentionOptions& options = {});

// Overwrites dq (B, H, Nq, d), dk and dv (B, H, Nk, d) with the gradients of sum(dout o out).
// out and lse are the forward's results (the naive variant recomputes them and ignores both).
template <class T>
void attention_backward(Variant variant, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                        const T* k, const T* v, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv,
                        const AttentionOptions& options = {});

extern template void attention_forward<float>(Variant, const AttentionShape&, const Mask&, float, const float*,
                                              const float*, const float*, float*, float*, const AttentionOptions&);
extern template void attention_forward<double>(Variant, const AttentionShape&, const Mask&, double, const double*,
                                               const double*, const double*, double*, double*,
                                               const AttentionOptions&);
extern template void attention_backward<float>(Variant, const AttentionShape&, const Mask&, float, const float*,
                                               const float*, const float*, const float*, const float*,
                                               const float*, float*, float*, float*, const AttentionOptions&);
extern template void attention_backward<double>(Variant, const AttentionShape&, const Mask&, double, const double*,
                                                const double*, const double*, const double*, const double*,
                                                const double*, double*, double*, double*, const AttentionOptions&);

}  // namespace ped
