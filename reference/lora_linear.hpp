// LoRA linear layer: a frozen linear layer plus a trainable low-rank update.
// I input width, O output width, r rank, N tokens.
// x (I, N), W0 (O, I) frozen, b0 (O) frozen, A (r, I), B (O, r), s = alpha / r, y (O, N).
#pragma once

#include "reference/common.hpp"

namespace ped::ref {

template <class T>
struct LoraLinearParams {
  Mat<T> w0;  // (O, I), frozen
  Col<T> b0;  // (O), frozen
  Mat<T> a;   // (r, I), trainable
  Mat<T> b;   // (O, r), trainable
  T alpha = T(1);
  T scale() const { return alpha / static_cast<T>(a.n_rows); }  // s = alpha / r
};

// What backward needs, kept by forward.
template <class T>
struct LoraLinearCache {
  Mat<T> x;   // (I, N) forward input
  Mat<T> ax;  // (r, N) A x
};

template <class T>
struct LoraLinearGrads {
  Mat<T> dx;  // (I, N)
  Mat<T> da;  // (r, I)
  Mat<T> db;  // (O, r)
};

// forward: y = W0 x + b0 1^T + s B (A x)
template <class T>
Mat<T> lora_linear_forward(const Mat<T>& x, const LoraLinearParams<T>& p, LoraLinearCache<T>& cache);

// backward: dx = W0^T dy + s A^T (B^T dy), dA = s (B^T dy) x^T, dB = s dy (A x)^T
template <class T>
LoraLinearGrads<T> lora_linear_backward(const Mat<T>& dy, const LoraLinearParams<T>& p,
                                        const LoraLinearCache<T>& cache);

// Checks shapes, rank > 0, alpha finite; throws std::invalid_argument naming `function`.
template <class T>
void check_lora_params(const char* function, const LoraLinearParams<T>& p);

}  // namespace ped::ref
