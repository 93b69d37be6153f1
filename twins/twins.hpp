// LibTorch twins of the reference layers, written with torch ops only (autograd differentiates
// them). Inputs are (rows x cols) views in the reference's column-major math orientation:
// x (D, N), W (O, I), vectors (n, 1).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ped::twin {

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta, double eps);
at::Tensor gelu(const at::Tensor& x, const std::string& approx);  // "tanh" or "erf"

struct AttentionWeights {
  at::Tensor wq, bq, wk, bk, wv, bv, wo, bo;
};
// Heads batched as (H, N, dh) through LibTorch's batched matmul, an arrangement independent of the
// reference's per-head loop.
at::Tensor attention(const at::Tensor& x, const AttentionWeights& w, std::int64_t heads, bool causal);

at::Tensor feed_forward(const at::Tensor& x, const at::Tensor& w1, const at::Tensor& b1, const at::Tensor& w2,
                        const at::Tensor& b2, const std::string& approx);

at::Tensor ids_tensor(const std::vector<std::int64_t>& ids);

}  // namespace ped::twin
