// The whole tiny GPT as one op: every parameter a differentiable input (with LoRA: the adapters; the
// frozen base rides along as non-differentiable inputs), the mean cross-entropy of a seeded batch the
// output, and the LibTorch twin of verify/ops/gpt_twin.hpp. The variant picks the attention path:
// empty = the reference per-head matrix path, else that kernel of variants/.
#include <cmath>
#include <cstring>
#include <limits>

#include "verify/ops/gpt_twin.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

namespace twin {

namespace {

at::Tensor project(const at::Tensor& x, const std::vector<at::Tensor>& p, std::size_t w, std::size_t b,
                   std::size_t la, std::size_t lb, double scale) {
  at::Tensor y = twin::linear(x, p[w], p[b]);
  if (la != ref::kNoEntry) y = y + scale * p[lb].mm(p[la].mm(x));
  return y;
}

}  // namespace

at::Tensor gpt_loss(const ref::GptConfig& cfg, const std::vector<at::Tensor>& p, const ref::TokenIds& inputs,
                    const ref::TokenIds& targets, std::int64_t batch) {
  const ref::GptLayout layout = ref::gpt_layout(cfg);
  const auto d = static_cast<std::int64_t>(cfg.width), h = static_cast<std::int64_t>(cfg.heads), dh = d / h;
  const auto bn = static_cast<std::int64_t>(inputs.size()), n = bn / batch;
  const double scale = cfg.lora_rank ? cfg.lora_alpha / static_cast<double>(cfg.lora_rank) : 0.0;
  const at::Tensor ids = ids_tensor(inputs);
  // X = W_E[:, ids] + W_P[:, 0:N] per sequence, (D, BN)
  at::Tensor x = p[layout.wte].index_select(1, ids) + p[layout.wpe].narrow(1, 0, n).repeat({1, batch});
  // hidden(i, j) as a (N, N) boolean, from the same Mask the model uses; filled on the host in one
  // buffer (element-wise tensor indexing would cost N^2 LibTorch calls inside the timed twin)
  std::vector<std::uint8_t> hidden_host(static_cast<std::size_t>(n * n));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) hidden_host[static_cast<std::size_t>(i * n + j)] = !cfg.mask.visible(i, j, n, n);
  const at::Tensor hidden =
      at::from_blob(hidden_host.data(), {n, n}, at::kByte).to(at::kBool);  // .to copies: no dangling view
  auto heads = [&](const at::Tensor& m) { return m.t().reshape({batch, n, h, dh}).permute({0, 2, 1, 3}); };
  for (const ref::GptBlockIndex& bi : layout.blocks) {
    const at::Tensor a = twin::layer_norm(x, p[bi.ln1_gamma], p[bi.ln1_beta], cfg.eps);
    const at::Tensor q = heads(project(a, p, bi.wq, bi.bq, bi.lora_a[0], bi.lora_b[0], scale));
    const at::Tensor k = heads(project(a, p, bi.wk, bi.bk, bi.lora_a[1], bi.lora_b[1], scale));
    const at::Tensor v = heads(project(a, p, bi.wv, bi.bv, bi.lora_a[2], bi.lora_b[2], scale));
    at::Tensor s = at::matmul(q, k.transpose(2, 3)) / std::sqrt(static_cast<double>(dh));  // (B, H, N, N)
    s = s.masked_fill(hidden, -std::numeric_limits<double>::infinity());
    const at::Tensor o = at::matmul(at::softmax(s, -1), v).permute({0, 2, 1, 3}).reshape({bn, d}).t();  // (D, BN)
    const at::Tensor x1 = x + project(o, p, bi.wo, bi.bo, bi.lora_a[3], bi.lora_b[3], scale);
    const at::Tensor b = twin::layer_norm(x1, p[bi.ln2_gamma], p[bi.ln2_beta], cfg.eps);
    const at::Tensor g = twin::gelu(project(b, p, bi.w1, bi.b1, bi.lora_a[4], bi.lora_b[4], scale),
                              cfg.approx == ref::GeluApprox::tanh ? "tanh" : "erf");
    x = x1 + project(g, p, bi.w2, bi.b2, bi.lora_a[5], bi.lora_b[5], scale);
  }
  const at::Tensor hf = twin::layer_norm(x, p[layout.lnf_gamma], p[layout.lnf_beta], cfg.eps);
  const at::Tensor z = p[layout.wte].t().mm(hf);  // (V, BN), the head tied to W_E
  return at::cross_entropy_loss(z.t(), ids_tensor(targets), {}, at::Reduction::Mean, ref::kDefaultIgnoreIndex, 0.0);
}

template <class T>
std::vector<at::Tensor> gpt_leaves(const ref::GptTensors<T>& tensors) {
  constexpr auto dtype = std::is_same_v<T, float> ? at::kFloat : at::kDouble;
  std::vector<at::Tensor> out;
  for (std::size_t i = 0; i < tensors.layout().entries.size(); ++i) {
    const ref::GptEntry& e = tensors.layout().entries[i];
    at::Tensor t = at::empty({static_cast<std::int64_t>(e.cols), static_cast<std::int64_t>(e.rows)}, dtype);
    std::memcpy(t.data_ptr(), tensors.mat(i).memptr(), e.size() * sizeof(T));
    out.push_back(t.set_requires_grad(e.trainable));
  }
  return out;
}

template <class T>
arma::Mat<T> to_arma(const at::Tensor& t) {
  const at::Tensor c = t.detach().contiguous();
  arma::Mat<T> m(static_cast<arma::uword>(c.size(1)), static_cast<arma::uword>(c.size(0)));
  std::memcpy(m.memptr(), c.data_ptr(), m.n_elem * sizeof(T));
  return m;
}

double torch_adamw_step(TorchAdamW& opt, const ref::GptLayout& layout, std::vector<at::Tensor>& params) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> norms;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (layout.entries[i].trainable) norms.push_back(params[i].grad().norm(2));
  }
  // clip_grad_norm_: total = ||(||g_i||)_i||, c = max_norm / (total + 1e-6) clamped to 1, g <- c g
  const at::Tensor total = at::stack(norms).norm(2);
  if (opt.cfg.clip_norm > 0) {
    const at::Tensor coef = at::clamp(opt.cfg.clip_norm / (total + 1e-6), c10::nullopt, 1.0);
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (layout.entries[i].trainable) params[i].grad().mul_(coef);
    }
  }
  if (opt.m.empty()) {
    for (const at::Tensor& t : params) {
      opt.m.push_back(at::zeros_like(t));
      opt.v.push_back(at::zeros_like(t));
    }
  }
  ++opt.t;
  // torch::optim::AdamW::step (1.13), one parameter group with decay and one without
  const double b1 = opt.cfg.beta1, b2 = opt.cfg.beta2, lr = opt.cfg.lr;
  const double bc1 = 1 - std::pow(b1, static_cast<double>(opt.t)), bc2 = 1 - std::pow(b2, static_cast<double>(opt.t));
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!layout.entries[i].trainable) continue;
    at::Tensor& p = params[i];
    const at::Tensor g = p.grad();
    if (layout.entries[i].decay && opt.cfg.weight_decay != 0) p.mul_(1 - lr * opt.cfg.weight_decay);
    opt.m[i].mul_(b1).add_(g, 1 - b1);
    opt.v[i].mul_(b2).addcmul_(g, g, 1 - b2);
    const at::Tensor denom = (opt.v[i].sqrt() / std::sqrt(bc2)).add_(opt.cfg.eps);
    p.addcdiv_(opt.m[i], denom, -lr / bc1);
  }
  for (at::Tensor& p : params) {
    if (p.grad().defined()) p.grad().zero_();
  }
  return total.item<double>();
}

template std::vector<at::Tensor> gpt_leaves<float>(const ref::GptTensors<float>&);
template std::vector<at::Tensor> gpt_leaves<double>(const ref::GptTensors<double>&);
template arma::Mat<float> to_arma<float>(const at::Tensor&);
template arma::Mat<double> to_arma<double>(const at::Tensor&);

}  // namespace twin

namespace {

// A seeded batch: B sequences of N+1 tokens drawn from a fixed random bigram table, so that the
// model has something to learn; inputs are the first N of each, targets the last N.
void seeded_batch(Rng& rng, std::int64_t vocab, std::int64_t batch, std::int64_t n, ref::TokenIds& inputs,
                  ref::TokenIds& targets) {
  const std::vector<std::int64_t> tokens = rng.integers(static_cast<std::size_t>(batch * (n + 1)), 0, vocab);
  inputs.clear();
  targets.clear();
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t i = 0; i < n; ++i) {
      inputs.push_back(tokens[static_cast<std::size_t>(b * (n + 1) + i)]);
      targets.push_back(tokens[static_cast<std::size_t>(b * (n + 1) + i + 1)]);
    }
  }
}

std::string attention_of(const std::string& variant) {
  return variant.empty() ? std::string(ref::kReferenceAttention) : ref::parse_gpt_attention(variant);
}

// The reference path ("") and every built-in kernel of the registry (a plugin's code is checked by
// op sdpa, in a child process; the whole model is not run on it).
std::vector<std::string> gpt_variants() {
  std::vector<std::string> variants = {""};
  for (const AttentionImpl* impl : attention_impls()) {
    if (!impl->isolate && impl->has_backward<float>() && impl->has_backward<double>()) variants.push_back(impl->name);
  }
  return variants;
}

Mask mask_of(const std::string& name) {
  if (name.empty() || name == "causal") return Mask::causal();
  if (name == "causal_sliding_window") return Mask::causal_sliding_window(2);
  throw std::invalid_argument("gpt: unknown mask '" + name + "', expected causal or causal_sliding_window");
}

OpCase make_gpt_case(const std::string& name, bool lora) {
  OpCase c{.name = name};
  // Layers fixed at 2 (a block's output feeding another block is what a single-block check misses).
  // The first shape is small enough for the full Jacobian; the second has 25208 parameters, more than
  // the 20000 of the full-Jacobian limit, so finite differences run in random-direction mode (for
  // gpt_lora its 3584 adapter entries still get the full Jacobian).
  c.default_shapes = {{.N = 4, .D = 8, .H = 2, .F = 12, .V = 7, .T = 5, .R = 2, .B = 2},
                      {.N = 8, .D = 40, .H = 4, .F = 64, .V = 23, .T = 8, .R = 4, .B = 2}};
  // The reference path and every kernel; with LoRA (its adapters' full Jacobian is the costly part)
  // the reference path and flash, the kernel furthest from it.
  c.variants = lora ? std::vector<std::string>{"", "flash"} : gpt_variants();
  if (!lora) c.registry_variants = gpt_variants;
  c.masks = {"causal"};  // a sliding window is exercised by verify/tests/gpt_training_test.cpp
  c.make = [name, lora](const CaseParams& cp, std::uint64_t seed) {
    const Dims& d = cp.dims;
    Problem p{.op = name, .variant = cp.variant,
              .shape = lora ? shape_string({{"B", d.B}, {"N", d.N}, {"V", d.V}, {"T", d.T}, {"D", d.D}, {"H", d.H}, {"F", d.F}, {"R", d.R}})
                            : shape_string({{"B", d.B}, {"N", d.N}, {"V", d.V}, {"T", d.T}, {"D", d.D}, {"H", d.H}, {"F", d.F}}),
              .mask = cp.mask.empty() ? "causal" : cp.mask, .seed = seed};
    require_sizes(d.D % d.H == 0, p.op, p.shape, "H to divide D");
    require_sizes(d.N <= d.T, p.op, p.shape, "N <= T (the positional table)");
    require_sizes(!lora || d.R <= std::min(d.D, d.F), p.op, p.shape, "R <= min(D, F)");
    ref::GptConfig cfg{.vocab = static_cast<arma::uword>(d.V), .context = static_cast<arma::uword>(d.T),
                       .width = static_cast<arma::uword>(d.D), .heads = static_cast<arma::uword>(d.H), .layers = 2,
                       .ffn = static_cast<arma::uword>(d.F), .lora_rank = lora ? static_cast<arma::uword>(d.R) : 0,
                       .lora_alpha = 3.0, .lora_targets = ref::lora_q | ref::lora_v | ref::lora_o | ref::lora_mlp,
                       .attention = attention_of(cp.variant), .mask = mask_of(cp.mask),
                       .threads = 1};  // tiny problems: OpenMP's fork/join would cost more than the work
    // Parameters larger than GPT-2's 0.02 so that every path carries signal: weights of std
    // 0.85 / sqrt(D) (0.3 at D = 8; pre-activations of order 1, so gelu and softmax work in their curved
    // range without making the finite differences' fifth derivatives large), and random (not zero)
    // biases, gains and LoRA B.
    cfg.init_std = 0.85 / std::sqrt(static_cast<double>(d.D));
    ref::Gpt<double> init(cfg, seed);
    Rng rng(seed);
    for (std::size_t i = 0; i < init.layout().entries.size(); ++i) {
      const ref::GptEntry& e = init.layout().entries[i];
      arma::mat value = init.params().mat(i);
      if (e.cols == 1 || e.name.ends_with("lora_b")) value += rng.normal(e.rows, e.cols, 0.2);
      p.inputs.push_back({e.name, value, e.trainable});
    }
    ref::TokenIds inputs, targets;
    seeded_batch(rng, d.V, d.B, d.N, inputs, targets);
    targets.back() = ref::kDefaultIgnoreIndex;  // an ignored position on the way
    const auto batch = static_cast<arma::uword>(d.B);
    p.outputs = {"loss"};
    auto model = [cfg]<class T>(const Mats<T>& in) {
      std::vector<T> values;
      for (const arma::Mat<T>& m : in) values.insert(values.end(), m.begin(), m.end());  // layout order
      return ref::Gpt<T>(cfg, values);
    };
    p.forward = erase_forward([model, inputs, targets, batch]<class T>(const Mats<T>& in) -> Mats<T> {
      const ref::Gpt<T> m = model(in);
      ref::GptCache<T> cache;
      return {arma::Mat<T>(1, 1, arma::fill::value(m.forward(inputs, targets, batch, cache)))};
    });
    p.backward = erase_backward([model, inputs, targets, batch]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T> {
      const ref::Gpt<T> m = model(in);
      ref::GptCache<T> cache;
      m.forward(inputs, targets, batch, cache);
      ref::GptTensors<T> g(m.layout());
      m.backward(cache, g);
      Mats<T> out;
      for (std::size_t i = 0; i < in.size(); ++i) {
        if (m.layout().entries[i].trainable) out.push_back(dout[0](0, 0) * g.mat(i));
      }
      return out;
    });
    p.twin = [cfg, inputs, targets, batch](const TorchTensors& in) -> TorchTensors {
      return {twin::gpt_loss(cfg, in, inputs, targets, static_cast<std::int64_t>(batch))};
    };
    return p;
  };
  return c;
}

}  // namespace

OpCase gpt_case() { return make_gpt_case("gpt", false); }
OpCase gpt_lora_case() { return make_gpt_case("gpt_lora", true); }

}  // namespace ped::verify
