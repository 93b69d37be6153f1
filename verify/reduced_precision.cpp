// Checks in bfloat16 and float16 (verify/reduced_precision.hpp), and LibTorch's attention in them.
#include "verify/reduced_precision.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "twins/masks.hpp"
#include "verify/report.hpp"
#include "verify/tolerance.hpp"

namespace ped::verify {

namespace {

struct Format {
  int fraction_bits;
  int min_exponent;  // of the normal numbers
  double max_finite;
};

Format format_of(Dtype dtype) {
  if (dtype == Dtype::bf16) return {7, -126, std::ldexp(2.0 - std::ldexp(1.0, -7), 127)};
  if (dtype == Dtype::f16) return {10, -14, 65504.0};
  throw std::logic_error(std::string("reduced precision: ") + to_string(dtype) + " is not a 16-bit dtype");
}

// ---- LibTorch in the dtype -------------------------------------------------------------------------

// LibTorch 1.13 on the CPU has bfloat16 matmul, softmax, its backward and logsumexp, but no float16
// matmul, softmax or logsumexp (LibTorch refuses float16 bmm on the CPU). So the float16 reference
// is emulated: every op in float, its result rounded to float16 (what a float16 kernel accumulating
// in float returns). The row's detail says so.
struct Arithmetic {
  at::ScalarType compute;
  bool round_each_op;  // emulated float16
  at::Tensor operator()(const at::Tensor& t) const { return round_each_op ? t.to(at::kHalf).to(at::kFloat) : t; }
};

Arithmetic arithmetic_of(Dtype dtype) {
  return dtype == Dtype::bf16 ? Arithmetic{at::kBFloat16, false} : Arithmetic{at::kFloat, true};
}

std::string how_of(Dtype dtype) {
  return dtype == Dtype::bf16
             ? "LibTorch bfloat16 (composed ops, autograd's formulas)"
             : "LibTorch float16 emulated: each op in float, rounded to float16 after it (LibTorch 1.13 has no CPU "
               "float16 matmul, softmax or logsumexp)";
}

}  // namespace

double rounded_to_reduced(double x, Dtype dtype) {
  const Format f = format_of(dtype);
  if (!std::isfinite(x) || x == 0) return x;
  const int exponent = std::max(std::ilogb(x), f.min_exponent);
  const double ulp = std::ldexp(1.0, exponent - f.fraction_bits);
  const double r = std::nearbyint(x / ulp) * ulp;  // the default rounding mode: to nearest, ties to even
  return std::abs(r) > f.max_finite ? std::copysign(std::numeric_limits<double>::infinity(), x) : r;
}

arma::mat rounded_to_reduced(const arma::mat& m, Dtype dtype) {
  format_of(dtype);  // refuses float and double before any element
  arma::mat out = m;
  out.transform([dtype](double e) { return rounded_to_reduced(e, dtype); });
  return out;
}

double reduced_epsilon(Dtype dtype) { return std::ldexp(1.0, -format_of(dtype).fraction_bits); }

ReducedReference sdpa_reduced_reference(const AttentionShape& s, const Mask& mask,
                                        double scale, Dtype dtype, const Tensors& in, const Tensors& dout,
                                        bool backward) {
  const Arithmetic r = arithmetic_of(dtype);
  auto tensor = [&](const arma::mat& m, std::int64_t n) {
    return r(at::from_blob(const_cast<double*>(m.memptr()), {s.batch, s.heads, n, s.head_dim}, at::kDouble)
                 .to(r.compute));
  };
  auto back = [](const at::Tensor& t, arma::uword rows) {
    const at::Tensor c = t.contiguous().to(at::kDouble);
    arma::mat m(rows, static_cast<arma::uword>(c.numel()) / rows);
    std::memcpy(m.memptr(), c.data_ptr<double>(), m.n_elem * sizeof(double));
    return m;
  };
  const at::Tensor q = tensor(in.at(0), s.seq_q), k = tensor(in.at(1), s.seq_k), v = tensor(in.at(2), s.seq_k);
  const at::Tensor seen = twin::visible_mask(mask, s.seq_q, s.seq_k);
  const at::Tensor row_has_key = seen.any(-1, /*keepdim=*/true);
  const double inf = std::numeric_limits<double>::infinity();
  // sdpa_case's twin, op by op: S = s Q K^T, masked, P = softmax(S) (zero rows without a key), O = P V
  const at::Tensor qk = r(at::matmul(q, k.transpose(-2, -1)));
  at::Tensor scores = r(qk * scale);
  scores = scores.masked_fill(seen.logical_not(), -inf).masked_fill(row_has_key.logical_not(), 0.0);
  const at::Tensor keep = row_has_key.to(r.compute);
  const at::Tensor p = r(r(at::softmax(scores, -1)) * keep);
  const at::Tensor out = r(at::matmul(p, v));
  const at::Tensor lse = r(at::logsumexp(scores, -1)).masked_fill(row_has_key.squeeze(-1).logical_not(), -inf);
  const auto d = static_cast<arma::uword>(s.head_dim);
  ReducedReference result{{back(out, d), back(lse, 1)}, {}, how_of(dtype)};
  if (!backward) return result;
  // autograd's backward of the same graph: dV = P^T dO, dP = dO V^T, the softmax backward
  // P o (dP - rowsum(dP o P)) (one fused op), then the scale and the two matmuls
  const at::Tensor d_out = tensor(dout.at(0), s.seq_q);
  const at::Tensor dv = r(at::matmul(p.transpose(-2, -1), d_out));
  const at::Tensor dp = r(r(at::matmul(d_out, v.transpose(-2, -1))) * keep);
  const at::Tensor softmax_out = r(at::softmax(scores, -1));
  const at::Tensor ds = r(at::_softmax_backward_data(dp, softmax_out, -1, r.compute));
  const at::Tensor dqk = r(ds * scale);
  const at::Tensor dq = r(at::matmul(dqk, k)), dk = r(at::matmul(dqk.transpose(-2, -1), q));
  result.gradients = {back(dq, d), back(dk, d), back(dv, d)};
  return result;
}

std::vector<CheckRow> check_reduced_precision(const Problem& p, Dtype dtype) {
  if (!p.naive_forward || !p.reduced_reference) {
    throw std::logic_error("check_reduced_precision: op " + p.op + " has no float64 truth or no LibTorch " +
                           to_string(dtype) + " reference");
  }
  const Tensors in = rounded_to(p.input_values(), dtype);
  const Tensors truth_out = p.naive_forward(Dtype::f64, in);
  const Tensors dout = random_cotangents(p, truth_out, dtype);
  const bool backward = static_cast<bool>(p.backward);
  const Tensors truth_grad = backward ? p.naive_backward(Dtype::f64, in, dout) : Tensors{};
  const Tensors ours_out = p.forward(dtype, in);
  const Tensors ours_grad = backward ? p.backward(dtype, in, dout) : Tensors{};
  const ReducedReference torch = p.reduced_reference(dtype, in, dout);
  const double out_floor = norm_floor_of(truth_out), grad_floor = norm_floor_of(truth_grad);
  const double floor = reduced_precision_floor(dtype);
  std::vector<CheckRow> rows;
  auto compare = [&](const std::string& quantity, const arma::mat& ours, const arma::mat& lib, const arma::mat& truth,
                     double norm_floor, bool infinities) {
    const ErrorMetrics m = compare_tensors(ours, truth, norm_floor, infinities);
    const ErrorMetrics lib_m = compare_tensors(lib, truth, norm_floor, infinities);
    const double lib_err = lib_m.comparable ? lib_m.norm_rel_err : 0;  // not finite: the floor alone
    const double bound = accuracy_bound(lib_err, floor);
    std::ostringstream how;
    how << "ours " << to_string(dtype) << " vs the float64 truth from the rounded inputs: pass when err <= "
        << format_number(kAccuracyCriterionFactor) << " x LibTorch's err " << format_number(lib_err) << " + floor "
        << format_number(floor) << " (eps of " << to_string(dtype) << ")";
    if (!lib_m.comparable) how << "; LibTorch's result not comparable: " << lib_m.problem;
    how << "; " << torch.how;
    rows.push_back(make_row(quantity, m, bound, how.str()));
    rows.back().reference = to_string(Reference::libtorch);
  };
  for (std::size_t o = 0; o < p.outputs.size(); ++o) {
    compare(p.outputs[o], o < ours_out.size() ? ours_out[o] : arma::mat(), torch.outputs.at(o), truth_out[o],
            out_floor, p.infinity_allowed(p.outputs[o]));
  }
  const std::vector<std::size_t> idx = backward ? p.differentiable_indices() : std::vector<std::size_t>{};
  for (std::size_t g = 0; g < idx.size(); ++g) {
    compare("d" + p.inputs[idx[g]].name, g < ours_grad.size() ? ours_grad[g] : arma::mat(), torch.gradients.at(g),
            truth_grad.at(g), grad_floor, false);
  }
  return rows;
}

}  // namespace ped::verify
