// One op under test: its inputs, our forward and backward in float and double, and its LibTorch twin.
//
// Tensors travel as column-major double matrices (arma::mat), vectors as (n x 1); an op converts
// them to its dtype T inside. A twin receives each input as a LibTorch (rows x cols) view in the
// same math orientation (built as the transpose of a contiguous (cols x rows) leaf, which shares
// the column-major memory layout), so twins read like the reference formulas.
#pragma once

#include <ATen/ATen.h>

#include <armadillo>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/rng.hpp"

namespace ped::verify {

using Tensors = std::vector<arma::mat>;
template <class T>
using Mats = std::vector<arma::Mat<T>>;
using TorchTensors = std::vector<at::Tensor>;

// float, double, and the 16-bit dtypes bfloat16 and float16 (attention plugins that declare them:
// verify/reduced_precision.hpp).
enum class Dtype { f32, f64, bf16, f16 };
const char* to_string(Dtype dtype);  // "float", "double", "bfloat16", "float16"
inline bool is_reduced(Dtype dtype) { return dtype == Dtype::bf16 || dtype == Dtype::f16; }

enum class Reference { libtorch, finite_difference, naive };
const char* to_string(Reference reference);

struct Input {
  std::string name;
  arma::mat value;
  bool differentiable = true;  // false for frozen parameters (LoRA's base weight)
};

using ForwardFn = std::function<Tensors(Dtype, const Tensors& inputs)>;
// Returns the gradient of every differentiable input, in input order.
using BackwardFn = std::function<Tensors(Dtype, const Tensors& inputs, const Tensors& doutputs)>;
using TwinFn = std::function<TorchTensors(const TorchTensors& inputs)>;
// LibTorch's computation in a 16-bit dtype: forward outputs and gradients of the differentiable
// inputs (empty without a backward), as double values, for inputs and cotangents rounded to it.
struct ReducedReference {
  Tensors outputs, gradients;
  std::string how;  // how LibTorch computed them, for the rows' detail
};
using ReducedReferenceFn = std::function<ReducedReference(Dtype, const Tensors& inputs, const Tensors& doutputs)>;

struct Problem {
  std::string op;
  std::string variant;  // attention kernel name, empty for reference layers
  std::string shape;    // e.g. "N=5 D=8"
  std::string mask;     // attention mask, empty where there is none
  std::uint64_t seed = 0;
  std::vector<Input> inputs;
  std::vector<std::string> outputs;  // names of the forward outputs, e.g. {"y"} or {"loss"}
  // The last `forward_only_outputs` outputs are compared in forward but not differentiated
  // (an attention kernel's lse): backward takes cotangents of the others only.
  std::size_t forward_only_outputs = 0;
  // Outputs where an infinity is a legitimate value (lse = -inf for a query that sees no key): the
  // same infinity on both sides agrees there; anything else non-finite is still a failure.
  std::vector<std::string> infinities_allowed;
  ForwardFn forward;
  BackwardFn backward;  // empty: the implementation has no backward, only its forward is checked
  TwinFn twin;
  // The algorithmic reference (attention kernels: the naive variant), for Reference::naive.
  ForwardFn naive_forward;
  BackwardFn naive_backward;
  // A per-op tolerance that replaces the dtype policy of tolerance.hpp; set only with a reason.
  std::optional<double> tolerance_f32, tolerance_f64;
  // Replaces the tolerance of the double finite-difference check only (where the stencil's truncation
  // error, not the implementation, sets the level), keeping LibTorch's and naive's; with a reason.
  std::optional<double> tolerance_finite_difference_f64;
  std::string tolerance_reason;
  // The dtypes the implementation under test has; empty: float and double.
  std::vector<Dtype> dtypes;
  // 16-bit dtypes (verify/reduced_precision.hpp): forward and backward take them, naive_forward and
  // naive_backward in double give the truth, and this gives LibTorch's error to compare with.
  ReducedReferenceFn reduced_reference;
  // Its code comes from outside this project (a plugin): every check runs in a child process, so
  // that a crash is reported as a failed check naming the signal and the case.
  bool isolate = false;

  Tensors input_values() const;
  bool has_dtype(Dtype dtype) const;
  std::vector<std::size_t> differentiable_indices() const;
  std::size_t differentiable_outputs() const { return outputs.size() - forward_only_outputs; }
  bool infinity_allowed(const std::string& output) const;
};

// The inputs as the dtype under test sees them (rounded to float for Dtype::f32, to bfloat16 or
// float16 to nearest even), so that every side of a comparison starts from identical values.
Tensors rounded_to(const Tensors& ts, Dtype dtype);

// Seeded cotangents for the differentiable outputs, rounded to `dtype`.
Tensors random_cotangents(const Problem& problem, const Tensors& outputs, Dtype dtype);

// Converts between the carrier type and the op's dtype.
arma::fmat to_float(const arma::mat& m);
Mats<float> to_float(const Tensors& ts);
Tensors to_double(const Mats<float>& ts);

// Type-erases a generic forward `[]<class T>(const Mats<T>& in) -> Mats<T>`.
template <class Fn>
ForwardFn erase_forward(Fn fn) {
  return [fn](Dtype dt, const Tensors& in) -> Tensors {
    if (is_reduced(dt)) throw std::logic_error(std::string("erase_forward: no ") + to_string(dt) + " forward");
    if (dt == Dtype::f64) return fn(in);
    return to_double(fn(to_float(in)));
  };
}

// Type-erases a generic backward `[]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T>`.
template <class Fn>
BackwardFn erase_backward(Fn fn) {
  return [fn](Dtype dt, const Tensors& in, const Tensors& dout) -> Tensors {
    if (is_reduced(dt)) throw std::logic_error(std::string("erase_backward: no ") + to_string(dt) + " backward");
    if (dt == Dtype::f64) return fn(in, dout);
    return to_double(fn(to_float(in), to_float(dout)));
  };
}

template <class T>
arma::Col<T> as_col(const arma::Mat<T>& m) {
  return arma::vectorise(m);
}

}  // namespace ped::verify
