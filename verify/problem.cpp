#include "verify/problem.hpp"

#include "verify/reduced_precision.hpp"

#include <algorithm>
#include <random>

namespace ped::verify {

const char* to_string(Dtype dtype) {
  switch (dtype) {
    case Dtype::f32: return "float";
    case Dtype::f64: return "double";
    case Dtype::bf16: return "bfloat16";
    case Dtype::f16: return "float16";
  }
  return "?";
}

const char* to_string(Reference reference) {
  switch (reference) {
    case Reference::libtorch: return "libtorch";
    case Reference::finite_difference: return "finite_difference";
    case Reference::naive: return "naive";
  }
  return "?";
}

bool Problem::has_dtype(Dtype dtype) const {
  if (dtypes.empty()) return !is_reduced(dtype);
  return std::find(dtypes.begin(), dtypes.end(), dtype) != dtypes.end();
}

Tensors Problem::input_values() const {
  Tensors values;
  values.reserve(inputs.size());
  for (const Input& in : inputs) values.push_back(in.value);
  return values;
}

std::vector<std::size_t> Problem::differentiable_indices() const {
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].differentiable) idx.push_back(i);
  }
  return idx;
}

bool Problem::infinity_allowed(const std::string& output) const {
  for (const std::string& o : infinities_allowed) {
    if (o == output) return true;
  }
  return false;
}

Tensors rounded_to(const Tensors& ts, Dtype dtype) {
  if (is_reduced(dtype)) {
    Tensors out;
    out.reserve(ts.size());
    for (const arma::mat& t : ts) out.push_back(rounded_to_reduced(t, dtype));
    return out;
  }
  return dtype == Dtype::f64 ? ts : to_double(to_float(ts));
}

Tensors random_cotangents(const Problem& problem, const Tensors& outputs, Dtype dtype) {
  Rng rng(problem.seed ^ 0x9e3779b97f4a7c15ULL);
  Tensors dout;
  for (std::size_t k = 0; k < problem.differentiable_outputs(); ++k) {
    dout.push_back(rng.normal(outputs[k].n_rows, outputs[k].n_cols));
  }
  return rounded_to(dout, dtype);
}

arma::fmat to_float(const arma::mat& m) { return arma::conv_to<arma::fmat>::from(m); }

Mats<float> to_float(const Tensors& ts) {
  Mats<float> out;
  out.reserve(ts.size());
  for (const arma::mat& t : ts) out.push_back(to_float(t));
  return out;
}

Tensors to_double(const Mats<float>& ts) {
  Tensors out;
  out.reserve(ts.size());
  for (const arma::fmat& t : ts) out.push_back(arma::conv_to<arma::mat>::from(t));
  return out;
}

}  // namespace ped::verify
