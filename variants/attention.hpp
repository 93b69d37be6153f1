// Scaled dot-product attention kernels, forward and backward: one API over four variants.
//
// B batch, H heads, H_kv key/value heads (H_kv divides H; H_kv = H unless grouped), Nq query tokens,
// Nk key tokens, d head dim, s scale.
// Every tensor is a contiguous row-major buffer (LibTorch's default layout):
//   q    (B, H, Nq, d)      k, v   (B, H_kv, Nk, d)
//   out  (B, H, Nq, d)      stats  (B, H, Nq) RowStats: row max and inverse row sum of the softmax
//   dout (B, H, Nq, d)      dq (B, H, Nq, d), dk, dv (B, H_kv, Nk, d)
// Math per (b, h), with M the mask (-inf where key j is hidden from query i):
//   forward:  S = s Q K^T + M (Nq, Nk), P = softmax_rows(S), O = P V, lse_i = log sum_j exp(S_ij)
//   backward: dV = P^T dO, dP = dO V^T, dS = P o (dP - rowsum(dO o O)), dQ = s dS K, dK = s dS^T Q
// AttentionFeatures (below) extend this math the way FlashAttention-2's arguments do: grouped-query
// heads, ALiBi, logit soft-capping, per-sequence lengths, dropout on P and attention sinks.
//
// Forward -> backward contract: the forward writes out and, per query row, RowStats {max, inv_sum}:
// max = max_j S_ij, the forward's own rounded score, and inv_sum = 1 / sum_j exp(S_ij - max), the
// factor the forward normalised with. The backward recomputes P_ij = exp(S_ij - max) * inv_sum. max
// is one of the forward's own scores, so S_ij - max is exact near the top of a row, and inv_sum in
// (0, 1] carries only its own rounding: nothing of the scores' size reaches P, whereas an lse
// rounded to T carries an absolute error of ulp(|lse|) / 2 (5e-4 in float at |lse| = 1e4) into P.
// lse_i = max - log(inv_sum) (RowStats::lse). Pass the backward the out and stats of the same
// variant's forward with the same options: then its scores are bitwise the forward's.
// Rows dominated by one key (inv_sum > 1/2) get that key's dS in a form without cancellation
// (variants/kernels.hpp, "dominated rows"); the accuracy this buys is checked against LibTorch by
// verify/tests/sdpa_accuracy_test.cpp.
//
// Rows without a key: a query that sees no key gets out row 0, stats {-inf, 0} (lse = -inf) and
// contributes nothing to any gradient; its dq row is 0, never NaN, whatever its q and dout hold.
// Non-finite inputs (NaN, +-inf) are another matter: every output that depends on a non-finite input
// element is NaN, and exactly those (the same in every variant). "Depends" is structural: out_i and
// stats_i depend on q_i and on k_j, v_j for every key j visible to query i (whether or not its
// probability underflows to 0); the gradients follow the backward formulas above. Per query row i
// with at least one visible key:
//   - q_i or a visible k_j non-finite: out_i, stats_i NaN, and in backward dq_i and dk_j, dv_j of
//     every visible j NaN (all d components);
//   - otherwise a visible v_jc non-finite: out_ic NaN (component c only);
//   - in backward, a non-finite stats_i acts like a non-finite q_i; a non-finite dout_i or out_i, or
//     a visible non-finite v_j: dq_i and dk_j of every visible j NaN; and dv_jc NaN for every
//     visible j where dout_ic is non-finite.
// A hidden key never reaches query i, and a query that sees no key is untouched by its own q_i.
// The kernels check their inputs for non-finite values (a pass over q, k, v, and out, stats, dout
// in backward); when there are some they run on copies with those values set to 0, then write NaN
// into exactly the dependent outputs. Finite inputs whose scores overflow T are not covered.
//
// Numerics: scores are shifted by their row max, so scores of +-1e4 neither overflow nor underflow.
//
// Variants (all accept every Mask, all give the same results up to rounding; the AttentionFeatures
// each implements are its AttentionImpl::features, registry.hpp: naive and blocked implement all):
//   naive    materialises S and P (O(Nq Nk) memory) in double; the algorithmic reference
//   blocked  query strips of tile_q rows, scores and softmax of a whole strip with BLAS (O(tile_q Nk) memory)
//   flash    FlashAttention-2: tiles of Q and K/V, online softmax, only the row stats kept; backward
//            recomputes P from them (O(tile_q tile_k) memory per thread); tiles the mask leaves empty are skipped
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

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include <pedestrian/attention_dropout.h>

#include "core/mask.hpp"

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
  // H_kv, the heads of k, v, dk, dv: 0 means H (plain multi-head attention). Grouped-query attention
  // takes 1 <= H_kv < H with H % H_kv == 0 (multi-query: H_kv = 1); query head h reads key/value
  // head h / (H / H_kv) (LibTorch's repeat_interleave, FlashAttention's convention), and dK, dV sum
  // over the H / H_kv query heads of their group.
  std::int64_t heads_kv = 0;

  std::int64_t kv_heads() const { return heads_kv == 0 ? heads : heads_kv; }
};

// Which extensions of the plain math a call uses, or an implementation accepts (bits of
// AttentionImpl::features, registry.hpp).
enum class AttentionFeature : std::uint8_t {
  grouped_query,    // AttentionShape::heads_kv != heads
  alibi,            // AttentionFeatures::alibi_slopes
  softcap,          // AttentionFeatures::softcap
  variable_length,  // AttentionFeatures::seqlens_q / seqlens_k
  dropout,          // AttentionFeatures::dropout_p > 0
  sinks,            // AttentionFeatures::sinks
};
inline constexpr std::size_t kAttentionFeatureCount = 6;
constexpr std::uint32_t attention_feature_bit(AttentionFeature f) { return std::uint32_t{1} << static_cast<unsigned>(f); }
inline constexpr std::uint32_t kAllAttentionFeatures = (std::uint32_t{1} << kAttentionFeatureCount) - 1;
// "grouped_query", "alibi", "softcap", "variable_length", "dropout", "sinks".
const char* to_string(AttentionFeature f);
// The inverse of to_string; throws std::invalid_argument naming the unknown name and the known ones.
AttentionFeature parse_attention_feature(const std::string& name);

// What a call computes beyond plain scaled dot-product attention: FlashAttention-2's arguments
// (alibi_slopes, softcap, dropout_p, cu_seqlens) plus attention sinks. Everything is off by default;
// the per-head arrays hold H values (query heads) in double whatever T, and must stay valid for the
// call. Per (b, h), with p = i + (Nk_b - Nq_b) query i's key-space position (core/mask.hpp):
//   S_ij = c tanh(s q_i.k_j / c) when softcap c > 0, else s q_i.k_j
//   S_ij += -alibi_slopes[h] |p - j|   (under a causal mask, -slope (p - j): ALiBi's causal form)
//   S_ij = -inf where the mask hides key j from query i
//   P_ij = exp(S_ij) / (exp(sinks[h]) + sum_j' exp(S_ij'))     (without sinks: no exp(sinks[h]) term)
//   O = (P o Z / (1 - dropout_p)) V, Z_ij = ped_dropout_keep(seed, b, h, i, j, dropout_p)
//       (<pedestrian/attention_dropout.h>; the row statistics describe P before dropout)
// Backward: dP = (dO V^T) o Z / (1 - dropout_p), dS = P o (dP - rowsum(dO o O)), through the
// soft-cap dS_raw = dS (1 - tanh^2(s q.k / c)); d sinks[h] = -sum_{b, i} P_i,sink rowsum(dO o O)_i,
// with P_i,sink = exp(sinks[h]) / (exp(sinks[h]) + sum_j exp(S_ij)). ALiBi slopes are constants (no
// gradient), as in FlashAttention.
struct AttentionFeatures {
  const double* alibi_slopes = nullptr;  // H finite slopes (typically > 0), or null: no ALiBi
  double softcap = 0;                    // c: 0 = off, else finite and > 0
  double dropout_p = 0;                  // drop probability in [0, 1); 0 = off
  std::uint64_t dropout_seed = 0;        // with dropout_p > 0: the mask's seed (b, h, i, j the rest of its key)
  const double* sinks = nullptr;         // H finite sink logits, or null: no sinks
  // Backward with sinks: H values, overwritten with d sum(dout o out) / d sinks (required then).
  double* dsinks = nullptr;
  // Per-sequence lengths in the padded (B, H, N, d) layout: sequence b holds the first seqlens_q[b]
  // query rows (in [0, Nq]) and seqlens_k[b] key rows (in [0, Nk]) of its slices; the rows beyond
  // are padding, never read: out rows 0, stats {-inf, 0}, dq, dk, dv rows 0. Masks and positions
  // apply within each sequence (query i at p = i + seqlens_k[b] - seqlens_q[b]). A length of 0 is
  // allowed (an empty sequence). Null: every sequence is Nq or Nk long. FlashAttention's cu_seqlens
  // over a packed buffer are the prefix sums of these lengths; the padded layout keeps every tensor
  // (and the plugin ABI's DLTensors) rectangular.
  const std::int64_t* seqlens_q = nullptr;  // B lengths, or null
  const std::int64_t* seqlens_k = nullptr;  // B lengths, or null

  // The bits of the features a call with this shape uses (attention_feature_bit).
  std::uint32_t used(const AttentionShape& shape) const;
};

// Per query row: what the backward needs, besides out, to recompute the forward's probabilities
// P_ij = exp(S_ij - max) * inv_sum. A plain pair of T (an array of them is (B, H, Nq, 2) T).
template <class T>
struct RowStats {
  T max = -std::numeric_limits<T>::infinity();  // max_j S_ij; -inf when the row sees no key
  T inv_sum = 0;  // 1 / sum_j exp(S_ij - max), in (0, 1]; 0 when the row sees no key

  // log sum_j exp(S_ij) = max - log(inv_sum), evaluated in double and rounded to T; -inf for a row
  // that sees no key, NaN for a row that depends on a non-finite input.
  T lse() const {
    if (max == -std::numeric_limits<T>::infinity()) return max;
    return static_cast<T>(static_cast<double>(max) - std::log(static_cast<double>(inv_sum)));
  }
};

// Where the time of a call goes: the phases the blocked, flash and sparse kernels time when
// AttentionOptions::phases is set (naive times none). Each is one step of the per-tile (blocked:
// per-strip) math of the header comment above.
enum class AttentionPhase : std::uint8_t {
  score_gemm,    // S = s Q K^T (forward, and its recomputation in backward)
  mask,          // hidden pairs of partial tiles set to -inf
  softmax,       // forward: row max, exp, row sums, rescaling, normalisation; backward: P from the row stats
  value_gemm,    // forward: O += P V
  dv_gemm,       // backward: dV += P^T dO
  dp_gemm,       // backward: dP = dO V^T
  softmax_grad,  // backward: dS = P o (dP - D)
  dq_gemm,       // backward: dQ += s dS K
  dk_gemm,       // backward: dK += s dS^T Q
  dominated,     // backward: rows dominated by one key (their scan, exact dS and dQ term)
};
inline constexpr std::size_t kAttentionPhaseCount = 10;
// "score_gemm", "mask", ...: the enumerator's name.
const char* to_string(AttentionPhase phase);

// Nanoseconds spent in each phase (indexed by AttentionPhase), summed over the threads of the call.
// Each thread times its own phases with std::chrono::steady_clock and adds them here once, when it
// leaves a parallel region; time outside the phases (argument and non-finite checks, D =
// rowsum(dO o O), waiting at barriers) is in none. Hence sum(ns) <= threads x the call's wall time.
// The kernels add to what the struct holds: zero it before a call to time that call alone.
struct PhaseTimes {
  std::array<std::int64_t, kAttentionPhaseCount> ns{};
  std::int64_t& operator[](AttentionPhase p) { return ns[static_cast<std::size_t>(p)]; }
  std::int64_t operator[](AttentionPhase p) const { return ns[static_cast<std::size_t>(p)]; }
};

struct AttentionOptions {
  int threads = 0;             // OpenMP threads; 0 = omp_get_max_threads(); at most 1024
  std::int64_t tile_q = 0;     // blocked, flash: query rows per tile; 0 = the variant's default; at most 4096
  std::int64_t tile_k = 0;     // flash: keys per tile; 0 = the variant's default; at most 4096
  std::int64_t block_size = 64;  // sparse: block side of the block layout, in [1, 4096]
  // When set, blocked, flash and sparse add the time of each phase of the call to it (PhaseTimes).
  // Results are bitwise the same with or without it; null (the default) costs one pointer test per
  // tile. Not thread-safe across concurrent calls sharing one PhaseTimes.
  PhaseTimes* phases = nullptr;
  // What to compute beyond plain attention (ALiBi, soft-cap, lengths, dropout, sinks); the default
  // computes plain attention. Grouped-query heads are a shape (AttentionShape::heads_kv).
  AttentionFeatures features;
};

// Fills out (B, H, Nq, d) and stats (B, H, Nq). scale is used as given (typically 1 / sqrt(d)) and
// must be finite.
template <class T>
void attention_forward(Variant variant, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                       const T* k, const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options = {});

// Overwrites dq (B, H, Nq, d), dk and dv (B, H, Nk, d) with the gradients of sum(dout o out).
// out and stats are the forward's results (the naive variant recomputes P and uses them only for
// D = rowsum(dout o out) and the non-finite checks).
template <class T>
void attention_backward(Variant variant, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                        const T* k, const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk,
                        T* dv, const AttentionOptions& options = {});

// lse (B, H, Nq) <- stats[i].lse() for the `rows` = B H Nq rows of a forward's stats.
template <class T>
void lse_from_stats(std::int64_t rows, const RowStats<T>* stats, T* lse);

extern template void attention_forward<float>(Variant, const AttentionShape&, const Mask&, float, const float*,
                                              const float*, const float*, float*, RowStats<float>*,
                                              const AttentionOptions&);
extern template void attention_forward<double>(Variant, const AttentionShape&, const Mask&, double, const double*,
                                               const double*, const double*, double*, RowStats<double>*,
                                               const AttentionOptions&);
extern template void attention_backward<float>(Variant, const AttentionShape&, const Mask&, float, const float*,
                                               const float*, const float*, const float*, const RowStats<float>*,
                                               const float*, float*, float*, float*, const AttentionOptions&);
extern template void attention_backward<double>(Variant, const AttentionShape&, const Mask&, double, const double*,
                                                const double*, const double*, const double*,
                                                const RowStats<double>*, const double*, double*, double*, double*,
                                                const AttentionOptions&);
extern template void lse_from_stats<float>(std::int64_t, const RowStats<float>*, float*);
extern template void lse_from_stats<double>(std::int64_t, const RowStats<double>*, double*);

}  // namespace ped
