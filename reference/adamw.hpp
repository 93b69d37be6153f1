// AdamW (Loshchilov & Hutter 2019) with bias correction and decoupled weight decay, and gradient-norm
// clipping, over the flat buffers of GptTensors: one loop per step. The update follows LibTorch's
// torch::optim::AdamW (1.13) operation for operation, so the two agree to rounding:
//   p <- p (1 - lr wd)                       (entries with decay only)
//   m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g o g
//   p <- p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// Clipping as torch::nn::utils::clip_grad_norm_: c = max_norm / (||g|| + 1e-6), g <- c g when c < 1,
// ||g|| the 2-norm over every trainable entry. Frozen entries are never touched.
#pragma once

#include <cstdint>

#include "reference/gpt.hpp"

namespace ped::ref {

struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.1;
  double clip_norm = 1.0;  // <= 0: no clipping
};

void validate(const AdamWConfig& cfg, const char* function);

// Clips grads in place (trainable entries) and returns their 2-norm before clipping, summed in double.
// A non-finite norm (a diverged run) throws std::runtime_error.
template <class T>
double clip_grad_norm(GptTensors<T>& grads, double max_norm);

template <class T>
class AdamW {
 public:
  AdamW(const GptLayout& layout, const AdamWConfig& cfg);

  // One step: clips grads (in place) and updates the trainable entries of params. Returns the
  // gradient norm before clipping.
  double step(GptTensors<T>& params, GptTensors<T>& grads);

  const AdamWConfig& config() const { return cfg_; }
  void set_lr(double lr) { cfg_.lr = lr; }
  std::int64_t steps() const { return t_; }
  GptTensors<T>& m() { return m_; }  // first moments, the parameters' layout
  GptTensors<T>& v() { return v_; }  // second moments
  const GptTensors<T>& m() const { return m_; }
  const GptTensors<T>& v() const { return v_; }
  void set_steps(std::int64_t t) { t_ = t; }  // checkpoints restore it

 private:
  AdamWConfig cfg_;
  GptTensors<T> m_, v_;
  std::int64_t t_ = 0;
};

}  // namespace ped::ref
