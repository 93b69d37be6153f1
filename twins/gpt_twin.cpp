// The tiny GPT's LibTorch twin, its AdamW step and clipping (see gpt_twin.hpp).
#include "twins/gpt_twin.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "twins/masks.hpp"
#include "twins/twins.hpp"

namespace ped::twin {

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
  const at::Tensor ids = twin::ids_tensor(inputs);
  // X = W_E[:, ids] + W_P[:, 0:N] per sequence, (D, BN)
  at::Tensor x = p[layout.wte].index_select(1, ids) + p[layout.wpe].narrow(1, 0, n).repeat({1, batch});
  const at::Tensor hidden = visible_mask(cfg.mask, n, n).logical_not();  // the same Mask the model uses
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
  return at::cross_entropy_loss(z.t(), twin::ids_tensor(targets), {}, at::Reduction::Mean, ref::kDefaultIgnoreIndex, 0.0);
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


}  // namespace ped::twin
