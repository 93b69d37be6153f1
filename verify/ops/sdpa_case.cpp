// The attention implementations of the registry (variants/registry.hpp: the built-in kernels and
// any loaded plugin; scaled dot-product attention on [B, H, N, d] tensors), every implementation x
// every mask kind it takes (each family's sample, or the concrete masks of --masks), against the naive
// kernel, LibTorch and finite differences.
//
// Carrier layout: q is held as a column-major (d, B*H*Nq) matrix, whose memory is exactly the
// row-major [B, H, Nq, d] buffer the kernels take (k, v alike with Nk); out likewise, lse (from the
// forward's row stats) as (1, B*H*Nq).
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "plugin_host/reduced_precision.hpp"
#include "twins/attention_features.hpp"
#include "variants/attention.hpp"
#include "variants/registry.hpp"
#include "verify/ops/attention_runner.hpp"
#include "verify/ops/op_cases.hpp"
#include "verify/reduced_precision.hpp"

namespace ped::verify {

namespace {

const std::vector<std::string>& mask_names() {
  static const std::vector<std::string> names = {
      "none",          "causal",     "sliding_window", "causal_sliding_window", "strided",      "fixed",
      "global_tokens", "longformer", "bigbird",        "explicit_blocks",       "intersection", "union"};
  return names;
}

// A family's sample (mask parameters small so that the sweep's short sequences see every pattern's
// structure), or the concrete mask a Mask::parse text names, as it is.
Mask make_mask(const std::string& name, std::int64_t nq, std::int64_t nk, std::uint64_t seed) {
  if (std::find(mask_names().begin(), mask_names().end(), name) == mask_names().end()) {
    if (const std::optional<Mask> concrete = concrete_mask(name)) return *concrete;
  }
  if (name == "none") return Mask::none();
  if (name == "causal") return Mask::causal();
  if (name == "sliding_window") return Mask::sliding_window(3, 2);
  if (name == "causal_sliding_window") return Mask::causal_sliding_window(4);
  if (name == "strided") return Mask::strided(3, true);
  if (name == "fixed") return Mask::fixed(4, 1, true);
  if (name == "global_tokens") return Mask::global_tokens(2);
  if (name == "longformer") return Mask::longformer(2, 2, 1);
  if (name == "bigbird") return Mask::bigbird(4, 1, 1, 1, seed);
  if (name == "explicit_blocks") {
    // 8 x 8 blocks, about half visible, and the first block row empty when there is more than one:
    // its queries see no key at all (out 0, lse -inf, zero gradients).
    const std::int64_t block = 8, rows = (nq + block - 1) / block, cols = (nk + block - 1) / block;
    Rng rng(seed ^ 0x5bd1e995ULL);
    const arma::mat u = rng.uniform(static_cast<arma::uword>(rows), static_cast<arma::uword>(cols), 0.0, 1.0);
    std::vector<std::uint8_t> visible(static_cast<std::size_t>(rows * cols));
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t c = 0; c < cols; ++c) {
        visible[static_cast<std::size_t>(r * cols + c)] = (rows > 1 && r == 0) ? 0 : (u(r, c) < 0.5 || c == r % cols);
      }
    }
    return Mask::explicit_blocks(block, block, rows, cols, std::move(visible));
  }
  if (name == "intersection") return Mask::causal() & Mask::strided(2, false);
  if (name == "union") return Mask::strided(5, true) | Mask::global_tokens(1);
  throw std::invalid_argument("sdpa: unknown mask '" + name + "'");
}

// Composed LibTorch ops with autograd: the LibTorch twin of attention (twins/attention_features.hpp,
// plain ops on the explicit mask; a query row that sees no key gets out 0 and lse -inf) without
// features, on the carrier layout.
TorchTensors sdpa_twin(const TorchTensors& in, const AttentionShape& s, const Mask& mask, double scale) {
  auto as_4d = [&](const at::Tensor& view, std::int64_t n) { return view.t().reshape({s.batch, s.heads, n, s.head_dim}); };
  const twin::AttentionTwinResult r = twin::attention_with_features(
      as_4d(in[0], s.seq_q), as_4d(in[1], s.seq_k), as_4d(in[2], s.seq_k), at::Tensor(), mask, scale, {});
  return {r.out.reshape({-1, s.head_dim}).t(), r.lse.reshape({1, -1})};
}

// A plugin's kernel in a 16-bit dtype (plugin_host/reduced_precision.hpp) on the carrier layout;
// the inputs hold values of that dtype, so the float buffers carry them exactly.
struct ReducedKernel {
  const plugin::ReducedPrecisionKernel* kernel;
  AttentionShape shape;
  Mask mask;
  double scale;

  static std::vector<float> floats(const arma::mat& m) { return arma::conv_to<std::vector<float>>::from(arma::vectorise(m)); }
  static arma::mat doubles(const std::vector<float>& v, arma::uword rows) {
    arma::mat m(rows, v.size() / rows);
    for (std::size_t i = 0; i < v.size(); ++i) m(i) = v[i];
    return m;
  }

  void run_forward(const Tensors& in, std::vector<float>& out, std::vector<double>& lse) const {
    const std::vector<float> q = floats(in[0]), k = floats(in[1]), v = floats(in[2]);
    out.assign(q.size(), 0.0f);
    lse.assign(static_cast<std::size_t>(shape.batch * shape.heads * shape.seq_q), 0.0);
    kernel->forward(shape, mask, scale, q.data(), k.data(), v.data(), out.data(), lse.data(), {});
  }

  Tensors forward(const Tensors& in) const {
    std::vector<float> out;
    std::vector<double> lse;
    run_forward(in, out, lse);
    return {doubles(out, in[0].n_rows), arma::mat(arma::rowvec(lse))};
  }

  Tensors backward(const Tensors& in, const Tensors& dout) const {
    std::vector<float> out;
    std::vector<double> lse;
    run_forward(in, out, lse);
    const std::vector<float> q = floats(in[0]), k = floats(in[1]), v = floats(in[2]), d_out = floats(dout[0]);
    std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
    kernel->backward(shape, mask, scale, q.data(), k.data(), v.data(), out.data(), lse.data(), d_out.data(), dq.data(),
                     dk.data(), dv.data(), {});
    return {doubles(dq, in[0].n_rows), doubles(dk, in[1].n_rows), doubles(dv, in[2].n_rows)};
  }
};

// The 16-bit dtypes a plugin variant declares: its forward and backward take them, and LibTorch's
// attention in the same dtype is the yardstick (verify/reduced_precision.hpp).
void add_reduced_precision(Problem& p, const AttentionImpl& impl, const AttentionShape& shape, const Mask& mask,
                           double scale) {
  const ReducedKernel bf16{plugin::find_reduced_precision_kernel(impl.name, plugin::ReducedDtype::bfloat16), shape,
                           mask, scale};
  const ReducedKernel f16{plugin::find_reduced_precision_kernel(impl.name, plugin::ReducedDtype::float16), shape,
                          mask, scale};
  if (bf16.kernel == nullptr && f16.kernel == nullptr) return;
  p.dtypes.clear();
  if (impl.supports<float>()) p.dtypes.push_back(Dtype::f32);
  if (impl.supports<double>()) p.dtypes.push_back(Dtype::f64);
  if (bf16.kernel) p.dtypes.push_back(Dtype::bf16);
  if (f16.kernel) p.dtypes.push_back(Dtype::f16);
  auto kernel_for = [bf16, f16](Dtype dt) {
    const ReducedKernel& k = dt == Dtype::bf16 ? bf16 : f16;
    if (k.kernel == nullptr) throw std::logic_error(std::string("sdpa: no ") + to_string(dt) + " kernel");
    return k;
  };
  p.forward = [base = p.forward, kernel_for](Dtype dt, const Tensors& in) {
    return is_reduced(dt) ? kernel_for(dt).forward(in) : base(dt, in);
  };
  const bool backward = static_cast<bool>(p.backward);
  if (backward) {
    p.backward = [base = p.backward, kernel_for](Dtype dt, const Tensors& in, const Tensors& dout) {
      return is_reduced(dt) ? kernel_for(dt).backward(in, dout) : base(dt, in, dout);
    };
  }
  p.reduced_reference = [shape, mask, scale, backward](Dtype dt, const Tensors& in, const Tensors& dout) {
    return sdpa_reduced_reference(shape, mask, scale, dt, in, dout, backward);
  };
}

std::string sdpa_shape(const Dims& d) {
  return shape_string({{"B", d.B}, {"H", d.H}, {"Nq", d.N}, {"Nk", d.Nk > 0 ? d.Nk : d.N}, {"d", d.Dh}});
}

// A concrete mask applies when it fits the Nq x Nk scores (an explicit layout of their size).
void check_concrete_mask(const std::string& op, const Mask& mask, const Dims& d) {
  const std::string where = "op " + op + ", shape " + sdpa_shape(d);
  mask.validate(where.c_str(), d.N, d.Nk > 0 ? d.Nk : d.N);
}

Problem make_sdpa_problem(const std::string& op, const CaseParams& params, std::uint64_t seed, double input_scale) {
  const Dims& d = params.dims;
  const std::int64_t nk = d.Nk > 0 ? d.Nk : d.N;
  Problem p{.op = op,
            .variant = params.variant,
            .shape = sdpa_shape(d),
            .mask = params.mask,
            .seed = seed};
  const AttentionShape shape{.batch = d.B, .heads = d.H, .seq_q = d.N, .seq_k = nk, .head_dim = d.Dh};
  const Mask mask = make_mask(params.mask, d.N, nk, seed);
  mask.validate("sdpa", d.N, nk);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d.Dh));
  Rng rng(seed);
  const auto bh = static_cast<arma::uword>(d.B * d.H);
  p.inputs = {{"q", input_scale * rng.normal(d.Dh, bh * d.N)},
              {"k", input_scale * rng.normal(d.Dh, bh * nk)},
              {"v", rng.normal(d.Dh, bh * nk)}};
  p.outputs = {"out", "lse"};
  p.forward_only_outputs = 1;  // the kernels' backward takes dout only
  p.infinities_allowed = {"lse"};
  const AttentionImpl& impl = attention_impl(params.variant);
  const AttentionRunner ours{.impl = &impl, .shape = shape, .mask = mask, .scale = scale};
  const AttentionRunner naive{.impl = &attention_impl("naive"), .shape = shape, .mask = mask, .scale = scale};
  set_implementation(p, ours);
  set_naive_reference(p, naive);
  p.twin = [shape, mask, scale](const TorchTensors& in) { return sdpa_twin(in, shape, mask, scale); };
  add_reduced_precision(p, impl, shape, mask, scale);
  return p;
}

// A variant x mask combination runs when the implementation takes the mask's kind.
bool takes_mask(const CaseParams& cp) {
  const std::int64_t nk = cp.dims.Nk > 0 ? cp.dims.Nk : cp.dims.N;
  return attention_impl(cp.variant).supports(make_mask(cp.mask, cp.dims.N, nk, 1));
}

}  // namespace

Mask sdpa_family_mask(const std::string& name, std::int64_t seq_q, std::int64_t seq_k, std::uint64_t seed) {
  return make_mask(name, seq_q, seq_k, seed);
}

OpCase sdpa_case() {
  OpCase c{.name = "sdpa",
           .default_shapes = {{.N = 1, .H = 1, .B = 1, .Nk = 1, .Dh = 1},
                              {.N = 7, .H = 3, .B = 2, .Nk = 7, .Dh = 3},
                              {.N = 5, .H = 2, .B = 1, .Nk = 9, .Dh = 4},
                              {.N = 9, .H = 1, .B = 1, .Nk = 5, .Dh = 8},
                              {.N = 67, .H = 2, .B = 1, .Nk = 67, .Dh = 64},
                              {.N = 33, .H = 1, .B = 1, .Nk = 70, .Dh = 80},
                              {.N = 40, .H = 1, .B = 1, .Nk = 40, .Dh = 128}},
           .variants = attention_impl_names(),
           .masks = mask_names(),
           .references = {Reference::naive, Reference::libtorch, Reference::finite_difference},
           .runs = takes_mask,
           .registry_variants = attention_impl_names};
  c.check_concrete_mask = [](const Mask& mask, const Dims& d) { check_concrete_mask("sdpa", mask, d); };
  c.make = [](const CaseParams& cp, std::uint64_t seed) { return make_sdpa_problem("sdpa", cp, seed, 1.0); };
  return c;
}

OpCase sdpa_large_scores_case() {
  OpCase c{.name = "sdpa_large_scores",
           .default_shapes = {{.N = 70, .H = 2, .B = 1, .Nk = 70, .Dh = 64}, {.N = 9, .H = 1, .B = 1, .Nk = 13, .Dh = 3}},
           .variants = attention_impl_names(),
           .masks = {"none", "causal", "bigbird"},
           // Finite differences are left out: with scores of 1e4 the softmax is a step function on
           // the scale of any usable step, so a difference quotient measures nothing.
           .references = {Reference::naive, Reference::libtorch},
           .runs = takes_mask,
           .registry_variants = attention_impl_names};
  c.check_concrete_mask = [](const Mask& mask, const Dims& d) { check_concrete_mask("sdpa_large_scores", mask, d); };
  c.make = [](const CaseParams& cp, std::uint64_t seed) {
    // |q| ~ |k| ~ 100 * d^(1/4): scores s q.k of order 1e4
    Problem p = make_sdpa_problem("sdpa_large_scores", cp, seed,
                                  100.0 * std::pow(static_cast<double>(cp.dims.Dh), 0.25) / std::sqrt(2.0));
    p.tolerance_f32 = 2e-2;
    p.tolerance_reason =
        "scores ~1e4 (float 2e-2, double the default 1e-11): in float each rounding of a score (the product, the "
        "scaling) costs up to ulp(1e4)/2 = 4.9e-4 absolute, which exp turns into the same relative error of P, and a "
        "row whose top scores nearly tie passes it on to dS; naive (scores in double) and the float kernels or "
        "LibTorch float then differ by up to a few 1e-3 (observed worst 3.1e-3, dq, seeds 1-12); a wrong result is off "
        "by O(1). Double: observed worst 2.6e-13";
    return p;
  };
  return c;
}

}  // namespace ped::verify
