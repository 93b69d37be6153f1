// The whole tiny GPT of reference/gpt.hpp written with LibTorch ops (autograd differentiates it), and a
// LibTorch AdamW step and gradient clipping written as torch::optim::AdamW and
// torch::nn::utils::clip_grad_norm_ (1.13) compute them.
//
// Parameters are one tensor per GptLayout entry, in layout order, in the reference's (rows x cols)
// math orientation (wte (D, V), biases (n, 1)); activations are (D, B*N) as in the reference, and
// attention is batched as (B, H, N, dh) through LibTorch's matmul, an arrangement independent of both
// the reference's per-head loop and the variants' kernels.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "reference/adamw.hpp"
#include "reference/gpt.hpp"

namespace ped::twin {

// Mean next-token cross-entropy of B sequences (inputs, targets: B*N ids, ignore index -100).
at::Tensor gpt_loss(const ref::GptConfig& cfg, const std::vector<at::Tensor>& params, const ref::TokenIds& inputs,
                    const ref::TokenIds& targets, std::int64_t batch);

// Contiguous (rows x cols) leaf tensors holding the values of `tensors` (column-major memory is copied
// into the row-major storage of the transposed shape), requires_grad set on trainable entries.
template <class T>
std::vector<at::Tensor> gpt_leaves(const ref::GptTensors<T>& tensors);

// Copies a leaf's values back into a reference matrix (for comparisons).
template <class T>
arma::Mat<T> to_arma(const at::Tensor& t);

// AdamW state of the twin: first and second moments per trainable leaf.
struct TorchAdamW {
  ref::AdamWConfig cfg;
  std::vector<at::Tensor> m, v;
  std::int64_t t = 0;
};

// clip_grad_norm_ over the trainable leaves' gradients, then an AdamW step (decoupled decay on entries
// whose layout says decay); zeroes the gradients after. Returns the norm before clipping.
double torch_adamw_step(TorchAdamW& opt, const ref::GptLayout& layout, std::vector<at::Tensor>& params);

}  // namespace ped::twin
