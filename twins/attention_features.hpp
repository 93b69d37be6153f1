// The LibTorch twin of attention with AttentionFeatures (variants/attention.hpp), written with plain
// ops only (no scaled_dot_product_attention), so that autograd differentiates every feature
// independently of the kernels:
//   - grouped-query heads: K and V repeated over the head dim with repeat_interleave (query head h
//     reads key/value head h / (H / H_kv)), so dK, dV sum over a group by autograd;
//   - soft-cap: S = cap * tanh(S / cap) on the scaled scores;
//   - ALiBi: an explicit additive bias tensor -slope_h |p - j| (p = i + Nk_b - Nq_b), slopes constant;
//   - the mask: the additive 0 / -inf tensor of twins/masks.hpp;
//   - sinks: one extra logit column sinks[h] concatenated to S before the softmax, dropped after (it
//     joins the denominator and the logsumexp, and autograd gives d sinks);
//   - dropout: an explicit 0/1 tensor built from ped_dropout_keep (<pedestrian/attention_dropout.h>,
//     the one definition of the hash) times 1 / (1 - p), multiplied into P after the softmax;
//   - per-sequence lengths: each sequence's own rows are run on their own (the mask and positions
//     within the sequence); padding rows are out 0, lse -inf, and get no gradient.
// A query row that sees no key has out 0 and lse -inf, or lse = sinks[h] with sinks (P_sink = 1).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "core/mask.hpp"

namespace ped::twin {

// The features of one call, in the form the twin takes them. Empty vectors: the feature is off.
struct AttentionFeatureArgs {
  std::vector<double> alibi_slopes;  // H slopes (constants: never differentiated)
  double softcap = 0;                // 0: off
  double dropout_p = 0;              // 0: off
  std::uint64_t dropout_seed = 0;
  std::vector<std::int64_t> seqlens_q, seqlens_k;  // B lengths each, or empty: Nq and Nk
};

// (H, Nq, Nk) of `dtype`: -slope_h |p - j| with p = i + Nk - Nq, computed in double.
at::Tensor alibi_bias(const std::vector<double>& slopes, std::int64_t seq_q, std::int64_t seq_k,
                      at::ScalarType dtype = at::kFloat);

// (H, Nq, Nk) of `dtype`: 1 / (1 - p) where ped_dropout_keep(seed, b, h, i, j, p) keeps P_ij, else 0.
at::Tensor dropout_scale_mask(std::uint64_t seed, std::int64_t b, std::int64_t heads, std::int64_t seq_q,
                              std::int64_t seq_k, double p, at::ScalarType dtype = at::kFloat);

struct AttentionTwinResult {
  at::Tensor out;  // (B, H, Nq, d)
  at::Tensor lse;  // (B, H, Nq): log(exp(sink) + sum_j exp(S_ij)), -inf for padding rows and rows without a key
};

// q (B, H, Nq, d), k and v (B, H_kv, Nk, d), sinks (H) or an undefined tensor; all of one floating
// dtype. Throws std::invalid_argument naming the function for inconsistent sizes or features.
AttentionTwinResult attention_with_features(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                            const at::Tensor& sinks, const Mask& mask, double scale,
                                            const AttentionFeatureArgs& features);

}  // namespace ped::twin
