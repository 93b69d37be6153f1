// Comparison against LibTorch autograd.
#include <torch/csrc/autograd/autograd.h>

#include <cstring>

#include "verify/checks.hpp"
#include "verify/tolerance.hpp"

namespace ped::verify {

namespace {

at::ScalarType scalar_type(Dtype dtype) { return dtype == Dtype::f64 ? at::kDouble : at::kFloat; }

// A contiguous (cols x rows) leaf holding the column-major data of the (rows x cols) matrix m.
at::Tensor make_leaf(const arma::mat& m, Dtype dtype) {
  at::Tensor t = at::from_blob(const_cast<double*>(m.memptr()),
                               {static_cast<int64_t>(m.n_cols), static_cast<int64_t>(m.n_rows)}, at::kDouble);
  return t.to(scalar_type(dtype)).clone();
}

// Reads a (rows x cols) math-orientation tensor (or a scalar) back into a column-major matrix.
arma::mat from_math_view(const at::Tensor& t) {
  at::Tensor m = t.dim() == 0 ? t.reshape({1, 1}) : (t.dim() == 1 ? t.reshape({-1, 1}) : t);
  if (m.dim() != 2) throw std::runtime_error("from_math_view: twin output has " + std::to_string(m.dim()) + " dims");
  at::Tensor colmajor = m.t().contiguous().to(at::kDouble);
  arma::mat out(static_cast<arma::uword>(m.size(0)), static_cast<arma::uword>(m.size(1)));
  std::memcpy(out.memptr(), colmajor.data_ptr<double>(), out.n_elem * sizeof(double));
  return out;
}

// Reads a leaf's gradient, laid out like the leaf, back into the leaf's (rows x cols) matrix.
arma::mat from_leaf_grad(const at::Tensor& g, arma::uword rows, arma::uword cols) {
  arma::mat out(rows, cols, arma::fill::zeros);
  if (!g.defined()) return out;  // the output does not depend on this input
  at::Tensor c = g.contiguous().to(at::kDouble);
  std::memcpy(out.memptr(), c.data_ptr<double>(), out.n_elem * sizeof(double));
  return out;
}

}  // namespace

std::vector<CheckRow> check_against_libtorch(const Problem& p, Dtype dtype) {
  const Tensors in = rounded_to(p.input_values(), dtype);
  const Tensors ours_out = p.forward(dtype, in);
  const Tensors dout = random_cotangents(p, ours_out, dtype);
  const Tensors ours_grad = p.backward ? p.backward(dtype, in, dout) : Tensors{};

  std::vector<at::Tensor> views, diff_leaves;
  for (std::size_t i = 0; i < in.size(); ++i) {
    at::Tensor leaf = make_leaf(in[i], dtype);
    if (p.inputs[i].differentiable) {
      leaf.requires_grad_(true);
      diff_leaves.push_back(leaf);
    }
    views.push_back(leaf.t());
  }
  const TorchTensors twin_out = p.twin(views);
  if (twin_out.size() != ours_out.size()) {
    throw std::runtime_error(p.op + ": twin returns " + std::to_string(twin_out.size()) + " outputs, ours " +
                             std::to_string(ours_out.size()));
  }
  Tensors ref_out;
  std::vector<at::Tensor> grad_outputs, outputs;
  for (std::size_t k = 0; k < twin_out.size(); ++k) {
    ref_out.push_back(from_math_view(twin_out[k]));
    if (!p.backward || k >= p.differentiable_outputs() || !twin_out[k].requires_grad()) continue;
    // dout is (rows x cols) column-major: as a math view it is the transpose of its (cols x rows) leaf
    at::Tensor d = make_leaf(dout[k], dtype).t();
    if (twin_out[k].dim() < 2) d = d.reshape(twin_out[k].sizes());
    outputs.push_back(twin_out[k]);
    grad_outputs.push_back(d);
  }
  std::vector<at::Tensor> grads(diff_leaves.size());
  if (!outputs.empty() && !diff_leaves.empty()) {
    grads = torch::autograd::grad(outputs, diff_leaves, grad_outputs, /*retain_graph=*/false,
                                  /*create_graph=*/false, /*allow_unused=*/true);
  }
  const std::vector<std::size_t> idx = p.differentiable_indices();
  Tensors ref_grad;
  for (std::size_t g = 0; g < idx.size(); ++g) {
    ref_grad.push_back(from_leaf_grad(grads[g], in[idx[g]].n_rows, in[idx[g]].n_cols));
  }
  return compare_pass(p, ours_out, ref_out, ours_grad, ref_grad, tolerance_for(p, dtype, Reference::libtorch),
                      std::string("ours ") + to_string(dtype) + " vs LibTorch autograd " + to_string(dtype),
                      Reference::libtorch);
}

}  // namespace ped::verify
