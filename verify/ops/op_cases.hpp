// One OpCase per reference op: how to build a seeded problem of given sizes, with our forward and
// backward bound in both dtypes and the LibTorch twin. One file per op under verify/ops/.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "twins/twins.hpp"
#include "verify/sweep.hpp"

namespace ped::verify {

OpCase token_embedding_case();
OpCase positional_embedding_case();
OpCase linear_case();
OpCase lora_linear_case();
OpCase layer_norm_case();
OpCase gelu_tanh_case();
OpCase gelu_erf_case();
OpCase softmax_case();
OpCase cross_entropy_case();
OpCase attention_case();
OpCase residual_case();
OpCase feed_forward_case();
OpCase transformer_block_case();
OpCase sdpa_case();
OpCase sdpa_large_scores_case();
// Attention with AttentionFeatures (grouped-query heads, ALiBi, soft-cap, lengths, dropout, sinks):
// one feature set per sweep item (OpCase::feature_sets), for the implementations that declare it.
OpCase sdpa_features_case();
// The shape field of an sdpa_features row of `feature_set` at `dims` (names the features and parameters).
std::string sdpa_features_shape(const std::string& feature_set, const Dims& dims);
// The AttentionFeature bits of a feature set of sdpa_features, and the key/value heads it runs at
// `dims`; both throw std::invalid_argument naming an unknown set.
std::uint32_t sdpa_feature_set_bits(const std::string& feature_set);
std::int64_t sdpa_features_kv_heads(const std::string& feature_set, const Dims& dims);
// A mask family's sample as op sdpa sizes it (verify/ops/sdpa_case.cpp), or the concrete mask a
// Mask::parse text names.
Mask sdpa_family_mask(const std::string& name, std::int64_t seq_q, std::int64_t seq_k, std::uint64_t seed);
OpCase gpt_case();       // the whole tiny GPT (reference/gpt.hpp): loss against every parameter
OpCase gpt_lora_case();  // the same with LoRA adapters: gradients of the adapters, base frozen

// "N=5 D=8" from the sizes an op uses.
std::string shape_string(std::initializer_list<std::pair<const char*, std::int64_t>> sizes);

// Throws std::invalid_argument("op: message") for a size combination the op cannot take.
void require_sizes(bool ok, const std::string& op, const std::string& shape, const std::string& expected);

}  // namespace ped::verify
