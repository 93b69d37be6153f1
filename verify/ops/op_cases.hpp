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
OpCase gpt_case();       // the whole tiny GPT (reference/gpt.hpp): loss against every parameter
OpCase gpt_lora_case();  // the same with LoRA adapters: gradients of the adapters, base frozen

// "N=5 D=8" from the sizes an op uses.
std::string shape_string(std::initializer_list<std::pair<const char*, std::int64_t>> sizes);

// Throws std::invalid_argument("op: message") for a size combination the op cannot take.
void require_sizes(bool ok, const std::string& op, const std::string& shape, const std::string& expected);

}  // namespace ped::verify
