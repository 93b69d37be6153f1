#include "reference/adamw.hpp"

#include <stdexcept>
#include <string>

#include <cmath>

namespace ped::ref {

void validate(const AdamWConfig& c, const char* fn) {
  if (!(c.lr >= 0) || !std::isfinite(c.lr)) throw_invalid(fn, "lr = ", c.lr, ", expected >= 0");
  if (!(c.beta1 >= 0 && c.beta1 < 1)) throw_invalid(fn, "beta1 = ", c.beta1, ", expected in [0, 1)");
  if (!(c.beta2 >= 0 && c.beta2 < 1)) throw_invalid(fn, "beta2 = ", c.beta2, ", expected in [0, 1)");
  if (!(c.eps > 0) || !std::isfinite(c.eps)) throw_invalid(fn, "eps = ", c.eps, ", expected > 0");
  if (!(c.weight_decay >= 0) || !std::isfinite(c.weight_decay)) {
    throw_invalid(fn, "weight_decay = ", c.weight_decay, ", expected >= 0");
  }
  if (std::isnan(c.clip_norm)) throw_invalid(fn, "clip_norm is NaN");
}

template <class T>
double clip_grad_norm(GptTensors<T>& grads, double max_norm) {
  // Sum of squares in double, in 8 interleaved partial sums (element i goes to lane i mod 8 of its
  // entry) added in a fixed order: a vectorisable loop whose result does not depend on the machine's
  // vector width or the thread count.
  constexpr std::size_t lanes = 8;
  double sum = 0;
  for (const GptEntry& e : grads.layout().entries) {
    if (!e.trainable) continue;
    const T* g = grads.data().data() + e.offset;
    const std::size_t n = e.size(), body = n - n % lanes;
    double part[lanes] = {};
    for (std::size_t i = 0; i < body; i += lanes) {
      for (std::size_t j = 0; j < lanes; ++j) part[j] += static_cast<double>(g[i + j]) * static_cast<double>(g[i + j]);
    }
    for (std::size_t i = body; i < n; ++i) part[i - body] += static_cast<double>(g[i]) * static_cast<double>(g[i]);
    sum += ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  }
  const double norm = std::sqrt(sum);
  if (!std::isfinite(norm)) {
    // not bad input but a diverged run: a runtime error, not std::invalid_argument
    throw std::runtime_error("clip_grad_norm: the gradient norm is " + std::to_string(norm) + " (a non-finite gradient)");
  }
  if (max_norm > 0) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1) {
      const T c = static_cast<T>(coef);
      for (const GptEntry& e : grads.layout().entries) {
        if (!e.trainable) continue;
        T* g = grads.data().data() + e.offset;
        for (std::size_t i = 0; i < e.size(); ++i) g[i] *= c;
      }
    }
  }
  return norm;
}

template <class T>
AdamW<T>::AdamW(const GptLayout& layout, const AdamWConfig& cfg) : cfg_(cfg), m_(layout), v_(layout) {
  validate(cfg, "AdamW");
}

template <class T>
double AdamW<T>::step(GptTensors<T>& params, GptTensors<T>& grads) {
  constexpr const char* fn = "AdamW::step";
  if (params.data().size() != m_.data().size() || grads.data().size() != m_.data().size()) {
    throw_invalid(fn, "buffers of ", params.data().size(), " and ", grads.data().size(), " elements, expected ",
                  m_.data().size());
  }
  const double norm = clip_grad_norm(grads, cfg_.clip_norm);
  ++t_;
  const double bc1 = 1 - std::pow(cfg_.beta1, static_cast<double>(t_));
  const double bc2 = 1 - std::pow(cfg_.beta2, static_cast<double>(t_));
  // Scalars rounded to T once, as LibTorch does for a Scalar applied to a T tensor.
  const T decay = static_cast<T>(1 - cfg_.lr * cfg_.weight_decay);
  const T b1 = static_cast<T>(cfg_.beta1), one_b1 = static_cast<T>(1 - cfg_.beta1);
  const T b2 = static_cast<T>(cfg_.beta2), one_b2 = static_cast<T>(1 - cfg_.beta2);
  const T sqrt_bc2 = static_cast<T>(std::sqrt(bc2)), eps = static_cast<T>(cfg_.eps);
  const T step_size = static_cast<T>(cfg_.lr / bc1);
  for (const GptEntry& e : params.layout().entries) {
    if (!e.trainable) continue;
    // four distinct buffers; one vectorised pass (the same operations in the same order per element)
    T* __restrict p = params.data().data() + e.offset;
    const T* __restrict g = grads.data().data() + e.offset;
    T* __restrict m = m_.data().data() + e.offset;
    T* __restrict v = v_.data().data() + e.offset;
    const T keep = e.decay && cfg_.weight_decay != 0 ? decay : T(1);  // p * 1 is p exactly
    const std::size_t n = e.size();
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) {
      p[i] *= keep;
      m[i] = m[i] * b1 + one_b1 * g[i];
      v[i] = v[i] * b2 + one_b2 * g[i] * g[i];
      const T denom = std::sqrt(v[i]) / sqrt_bc2 + eps;
      p[i] -= step_size * (m[i] / denom);
    }
  }
  return norm;
}

template double clip_grad_norm<float>(GptTensors<float>&, double);
template double clip_grad_norm<double>(GptTensors<double>&, double);
template class AdamW<float>;
template class AdamW<double>;

}  // namespace ped::ref
