// A Mask (core/mask.hpp) as the dense LibTorch tensors the twins and baselines apply to their scores.
// Nq query tokens, Nk key tokens; query i, key j as in core/mask.hpp.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "core/mask.hpp"

namespace ped::twin {

// (Nq, Nk) boolean: true where key j is visible to query i. Built on the host from the mask's row
// intervals in one buffer (element-wise tensor indexing would cost Nq Nk LibTorch calls).
at::Tensor visible_mask(const Mask& mask, std::int64_t seq_q, std::int64_t seq_k);

// (Nq, Nk) additive mask of `dtype`: 0 where visible, -inf where hidden, to add to the scores before
// the softmax (what at::_scaled_dot_product_attention takes as attn_mask).
at::Tensor additive_mask(const Mask& mask, std::int64_t seq_q, std::int64_t seq_k, at::ScalarType dtype = at::kFloat);

}  // namespace ped::twin
