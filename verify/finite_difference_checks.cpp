// Comparison against central finite differences of our own double forward.
#include <cmath>
#include <limits>
#include <sstream>

#include "verify/checks.hpp"
#include "verify/tolerance.hpp"

namespace ped::verify {

namespace {

// The differentiable outputs of our double forward.
Tensors differentiable_forward(const Problem& p, const Tensors& in) {
  Tensors outs = p.forward(Dtype::f64, in);
  outs.resize(p.differentiable_outputs());
  return outs;
}

// All outputs flattened into one vector (column-major within each output, outputs in order).
arma::vec flatten(const Tensors& outs) {
  arma::uword n = 0;
  for (const arma::mat& o : outs) n += o.n_elem;
  arma::vec v(n);
  arma::uword at = 0;
  for (const arma::mat& o : outs) {
    if (o.n_elem) v.subvec(at, at + o.n_elem - 1) = arma::vectorise(o);
    at += o.n_elem;
  }
  return v;
}

// The inverse of flatten, with the shapes of `like`.
Tensors unflatten(const arma::vec& v, const Tensors& like) {
  Tensors out;
  arma::uword at = 0;
  for (const arma::mat& o : like) {
    arma::mat m(o.n_rows, o.n_cols);
    if (o.n_elem) m = arma::reshape(v.subvec(at, at + o.n_elem - 1), o.n_rows, o.n_cols);
    out.push_back(std::move(m));
    at += o.n_elem;
  }
  return out;
}

// Five-point central stencil along direction u of input i:
//   f'(x) u ~ (-f(x + 2hu) + 8 f(x + hu) - 8 f(x - hu) + f(x - 2hu)) / (12 h),
// truncation error O(h^4), rounding error O(eps / h); h = eps^(1/5) * max(1, max|x_i|) balances them.
arma::vec directional_derivative(const Problem& p, const Tensors& in, std::size_t i, const arma::mat& u) {
  const double h = std::pow(std::numeric_limits<double>::epsilon(), 0.2) * std::max(1.0, arma::abs(in[i]).max());
  Tensors x = in;
  auto f_at = [&](double t) {
    x[i] = in[i] + t * u;
    return flatten(differentiable_forward(p, x));
  };
  return (-f_at(2 * h) + 8 * f_at(h) - 8 * f_at(-h) + f_at(-2 * h)) / (12 * h);
}

}  // namespace

std::vector<CheckRow> check_against_finite_differences(const Problem& p, Dtype dtype,
                                                       const FiniteDifferenceOptions& options) {
  const double tol = tolerance_for(p, dtype, Reference::finite_difference);
  const Tensors in = rounded_to(p.input_values(), dtype);
  const Tensors out0 = differentiable_forward(p, in);
  const arma::uword n_out = flatten(out0).n_elem;
  const std::vector<std::size_t> idx = p.differentiable_indices();
  arma::uword n_in = 0;
  for (std::size_t i : idx) n_in += in[i].n_elem;

  std::vector<CheckRow> rows;
  if (static_cast<std::size_t>(n_out) * n_in <= options.full_jacobian_max_entries) {
    // Full Jacobian: numerical column by column, analytical row by row (one backward per output
    // element with a one-hot cotangent).
    std::vector<arma::mat> j_num(idx.size()), j_an(idx.size());
    for (std::size_t g = 0; g < idx.size(); ++g) {
      const arma::mat& x = in[idx[g]];
      j_num[g].set_size(n_out, x.n_elem);
      j_an[g].set_size(n_out, x.n_elem);
      for (arma::uword e = 0; e < x.n_elem; ++e) {
        arma::mat u(x.n_rows, x.n_cols, arma::fill::zeros);
        u(e) = 1.0;
        j_num[g].col(e) = directional_derivative(p, in, idx[g], u);
      }
    }
    for (arma::uword k = 0; k < n_out; ++k) {
      arma::vec onehot(n_out, arma::fill::zeros);
      onehot(k) = 1.0;
      const Tensors grads = p.backward(dtype, in, unflatten(onehot, out0));
      for (std::size_t g = 0; g < idx.size(); ++g) {
        const arma::mat& x = in[idx[g]];
        if (g < grads.size() && grads[g].n_elem == x.n_elem) {
          j_an[g].row(k) = arma::vectorise(grads[g]).t();
        } else {
          j_an[g].reset();  // wrong gradient shape: compare_tensors reports the mismatch
        }
      }
    }
    const double floor = norm_floor_of(j_num);
    for (std::size_t g = 0; g < idx.size(); ++g) {
      std::ostringstream how;
      how << "full Jacobian (" << n_out << " x " << in[idx[g]].n_elem << "), ours " << to_string(dtype)
          << " backward vs five-point central differences in double";
      rows.push_back(make_row("d" + p.inputs[idx[g]].name, compare_tensors(j_an[g], j_num[g], floor), tol, how.str()));
    }
  } else {
    // Random directions: v^T J u, numerically along u and analytically as <backward(v), u>.
    Rng rng(p.seed ^ 0xd1b54a32d192ed03ULL);
    const Tensors v = random_cotangents(p, out0, dtype);
    const Tensors grads = p.backward(dtype, in, v);
    const arma::vec vflat = flatten(v);
    std::vector<arma::mat> numeric(idx.size()), analytic(idx.size());
    std::vector<bool> shape_ok(idx.size());
    for (std::size_t g = 0; g < idx.size(); ++g) {
      const arma::mat& x = in[idx[g]];
      numeric[g].set_size(options.directions, 1);
      analytic[g].set_size(options.directions, 1);
      shape_ok[g] = g < grads.size() && grads[g].n_rows == x.n_rows && grads[g].n_cols == x.n_cols;
      for (int k = 0; k < options.directions; ++k) {
        arma::mat u = rng.normal(x.n_rows, x.n_cols);
        u /= std::max(arma::abs(u).max(), std::numeric_limits<double>::min());
        numeric[g](k) = arma::dot(vflat, directional_derivative(p, in, idx[g], u));
        analytic[g](k) = shape_ok[g] ? arma::dot(grads[g], u) : 0.0;
      }
    }
    const double floor = norm_floor_of(numeric);
    for (std::size_t g = 0; g < idx.size(); ++g) {
      std::ostringstream how;
      how << options.directions << " random directions v^T J u, ours " << to_string(dtype)
          << " backward vs five-point central differences in double";
      ErrorMetrics m = compare_tensors(analytic[g], numeric[g], floor);
      if (!shape_ok[g]) {
        m = compare_tensors(g < grads.size() ? grads[g] : arma::mat(), in[idx[g]]);
        m.comparable = false;
        m.problem = "gradient shape differs from the input's: " + m.problem;
      }
      rows.push_back(make_row("d" + p.inputs[idx[g]].name, m, tol, how.str()));
    }
  }
  for (CheckRow& r : rows) r.reference = to_string(Reference::finite_difference);
  return rows;
}

}  // namespace ped::verify
