// Checks in the 16-bit dtypes bfloat16 and float16, for attention plugins that declare them
// (include/pedestrian/attention_plugin.h), the way FlashAttention's own tests check them:
//   - inputs drawn in float64 and rounded to the dtype (round to nearest even); cotangents likewise;
//   - the truth computed in float64 from the rounded inputs (the naive kernel in double);
//   - the plugin run in the dtype, and LibTorch's composed attention (problem.reduced_reference)
//     in the same dtype on the same rounded inputs;
//   - per tensor (out, lse, and dq, dk, dv with a backward): pass when
//       err(plugin) <= 2 err(LibTorch) + floor,  floor = eps of the dtype
//     (accuracy_bound and reduced_precision_floor in verify/tolerance.hpp, with the reasons), err the
//     normwise relative error of verify/metrics.hpp against the truth. The row's tolerance is that
//     bound; its detail gives LibTorch's error and the floor.
// Finite differences are not run below float32 (a difference quotient in 8 or 11 bits measures
// nothing), nor the naive reference, which here is the truth.
#pragma once

#include <vector>

#include "variants/attention.hpp"
#include "verify/metrics.hpp"
#include "verify/problem.hpp"

namespace ped::verify {

// x rounded to the nearest bfloat16 (Dtype::bf16) or float16 (Dtype::f16) value, ties to even;
// beyond the largest finite value an infinity; NaN stays NaN.
double rounded_to_reduced(double x, Dtype dtype);
arma::mat rounded_to_reduced(const arma::mat& m, Dtype dtype);

// The unit roundoff's double, eps = 2^-fraction_bits: 2^-7 (bfloat16), 2^-10 (float16).
double reduced_epsilon(Dtype dtype);

// One row per forward output and per gradient, as described above; throws std::logic_error when
// the problem has no truth (naive_forward) or no reduced_reference.
std::vector<CheckRow> check_reduced_precision(const Problem& problem, Dtype dtype);

// LibTorch's scaled dot-product attention in `dtype` (the composed ops of sdpa_case's twin: scores,
// masked softmax, matmul; the backward with autograd's formulas), on the carrier layout of
// sdpa_case.cpp: q (d, B H Nq), k, v (d, B H Nk), dout (d, B H Nq); outputs out, lse (1, B H Nq);
// gradients dq, dk, dv when `backward`.
ReducedReference sdpa_reduced_reference(const AttentionShape& shape, const Mask& mask,
                                        double scale, Dtype dtype, const Tensors& inputs, const Tensors& doutputs,
                                        bool backward);

}  // namespace ped::verify
