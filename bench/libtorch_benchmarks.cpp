// LibTorch contenders and layer twins. B batch, H heads, N tokens, d head dim, D model width,
// F feed-forward width, V vocabulary. LibTorch tensors are row-major: a token is a row.
#include "bench/libtorch_benchmarks.hpp"

#include "bench/harness.hpp"
#include "twins/masks.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>

namespace ped::bench {
namespace {

at::Tensor uniform_tensor(at::IntArrayRef sizes, std::uint64_t seed) {
  at::Tensor t = at::empty(sizes, at::kFloat);
  fill_uniform(t.data_ptr<float>(), static_cast<std::size_t>(t.numel()), seed);
  return t;
}

// One contender's forward: out (B, H, Nq, d) from q (B, H, Nq, d), k, v (B, H_kv, Nk, d). `mask` is
// the additive mask or undefined (none, or SDPA's own is_causal).
struct AttentionForward {
  LibTorchFormulation formulation;
  bool causal;     // SDPA: is_causal=true and no explicit mask
  at::Tensor mask;  // (Nq, Nk) or, for a variable-length batch, (B, 1, N, N) additive; or undefined
  double scale;
  std::int64_t group = 1;  // H / H_kv: grouped-query K and V are repeated to H heads first

  at::Tensor operator()(const at::Tensor& q, const at::Tensor& k_in, const at::Tensor& v_in) const {
    // Grouped-query heads: LibTorch 1.13's SDPA has no enable_gqa, so K and V are expanded to H
    // heads as a LibTorch user would (query head h reads head h / group), inside the timed call.
    const at::Tensor k = group > 1 ? k_in.repeat_interleave(group, 1) : k_in;
    const at::Tensor v = group > 1 ? v_in.repeat_interleave(group, 1) : v_in;
    switch (formulation) {
      case LibTorchFormulation::sdpa: {
        // LibTorch 1.13's math path scales Q by 1/sqrt(d) itself; a float attn_mask is added to the
        // scores (a bool one would mark the visible pairs).
        const c10::optional<at::Tensor> m = mask.defined() ? c10::optional<at::Tensor>(mask) : c10::nullopt;
        return std::get<0>(at::_scaled_dot_product_attention(q, k, v, m, 0.0, false, causal));
      }
      case LibTorchFormulation::composed: {
        // forward: S = s Q K^T + M, P = softmax_rows(S), O = P V
        at::Tensor s = at::matmul(q, k.transpose(-2, -1)) * scale;
        if (mask.defined()) s = s + mask;
        return at::matmul(at::softmax(s, -1), v);
      }
      case LibTorchFormulation::addmm: {
        // One (N, N) score matrix at a time: per (b, h) S = addmm(M, Q_bh, K_bh^T, beta 1, alpha s)
        // (without a mask mm(s Q_bh, K_bh^T)), softmax, mm with V_bh; the outputs stacked back to
        // (B, H, N, d).
        const std::int64_t h = q.size(1), bh = q.size(0) * h, nq = q.size(2), nk = k.size(2), d = q.size(3);
        const std::vector<at::Tensor> qs = q.reshape({bh, nq, d}).unbind(0), ks = k.reshape({bh, nk, d}).unbind(0),
                                      vs = v.reshape({bh, nk, d}).unbind(0);
        std::vector<at::Tensor> outs;
        outs.reserve(static_cast<std::size_t>(bh));
        for (std::size_t i = 0; i < qs.size(); ++i) {
          // A variable-length batch's mask has one (N, N) slice per sequence b = i / H.
          const at::Tensor m = !mask.defined() || mask.dim() == 2 ? mask : mask[static_cast<std::int64_t>(i) / h][0];
          const at::Tensor s =
              mask.defined() ? at::addmm(m, qs[i], ks[i].t(), 1.0, scale) : at::mm(qs[i] * scale, ks[i].t());
          outs.push_back(at::mm(at::softmax(s, -1), vs[i]));
        }
        return at::stack(outs).view(q.sizes());
      }
    }
    throw std::logic_error("AttentionForward: unknown formulation");
  }
};

const LibTorchContender& libtorch_entry(const Contender& contender) {
  const LibTorchContender* entry = libtorch_contender(contender);
  if (entry == nullptr) throw std::invalid_argument("libtorch_attention: " + contender.name + " is not a LibTorch contender");
  return *entry;
}

// The padded batch's additive mask (B, 1, N, N), what a LibTorch user passes for sequences of
// `lengths` padded to N: within sequence b (its first L_b rows and keys) the case's mask, the padding
// keys hidden from every query; a padding query row (i >= L_b) sees the L_b real keys, so that its
// (discarded) output stays finite. Every length must be >= 1.
at::Tensor padded_batch_mask(const Mask& mask, const std::vector<std::int64_t>& lengths, std::int64_t n) {
  const auto b_count = static_cast<std::int64_t>(lengths.size());
  at::Tensor m = at::full({b_count, 1, n, n}, -std::numeric_limits<float>::infinity(), at::kFloat);
  for (std::int64_t b = 0; b < b_count; ++b) {
    const std::int64_t length = lengths[static_cast<std::size_t>(b)];
    if (length < 1) throw std::invalid_argument("padded_batch_mask: sequence length 0 would give NaN rows");
    at::Tensor slice = m[b][0];
    slice.narrow(0, 0, length).narrow(1, 0, length).copy_(twin::additive_mask(mask, length, length));
    if (length < n) slice.narrow(0, length, n - length).narrow(1, 0, length).fill_(0.0f);
  }
  return m;
}

// Whether the mask hides any pair of Nq x Nk scores: a decoding step's causal mask (one query at the
// last position) hides none, and a LibTorch user passes no mask then.
bool hides_some_pair(const Mask& mask, std::int64_t nq, std::int64_t nk) {
  return mask.block_layout(nq, nk, nq, nk).visible_pairs != nq * nk;
}

AttentionForward make_forward(const Contender& contender, const AttentionCase& c) {
  const LibTorchFormulation formulation = libtorch_entry(contender).formulation;
  AttentionForward f{.formulation = formulation, .causal = false, .mask = {},
                     .scale = 1.0 / std::sqrt(double(c.head_dim)), .group = c.heads / c.kv_heads()};
  const std::vector<std::int64_t> lengths = c.lengths();
  if (!lengths.empty()) {
    f.mask = padded_batch_mask(c.mask, lengths, c.seq_len);
  } else if (formulation == LibTorchFormulation::sdpa && c.mask.kind() == Mask::Kind::causal &&
             c.queries() == c.seq_len) {
    // is_causal is top-left aligned in LibTorch 1.13 (tril of an (Nq, Nk) matrix of ones): right only
    // for Nq = Nk; a decoding case takes the bottom-right mask below.
    f.causal = true;
  } else if (c.mask.kind() != Mask::Kind::none && hides_some_pair(c.mask, c.queries(), c.seq_len)) {
    f.mask = twin::additive_mask(c.mask, c.queries(), c.seq_len);
  }
  return f;
}

}  // namespace

void set_libtorch_threads(int threads) { at::set_num_threads(threads); }

std::string libtorch_version() { return TORCH_VERSION; }

void libtorch_attention_benchmark(benchmark::State& state, const AttentionCase& c) {
  // The allocator probe: glibc's default for this benchmark alone (allocator.hpp), set before its
  // tensors are made.
  std::optional<GlibcDefaultScope> glibc_default;
  if (libtorch_entry(c.contender).glibc_default_probe) glibc_default.emplace();
  const at::IntArrayRef::value_type q_sizes[] = {c.batch, c.heads, c.queries(), c.head_dim};
  const at::IntArrayRef::value_type kv_sizes[] = {c.batch, c.kv_heads(), c.seq_len, c.head_dim};
  const at::IntArrayRef q_shape(q_sizes), kv_shape(kv_sizes);
  const AttentionForward forward = make_forward(c.contender, c);
  at::Tensor q = uniform_tensor(q_shape, 1), k = uniform_tensor(kv_shape, 2), v = uniform_tensor(kv_shape, 3);
  const at::Tensor dout = uniform_tensor(q_shape, 4);
  at::Tensor out;
  switch (c.pass) {
    case Pass::forward: {
      const at::NoGradGuard no_grad;
      measured_loop(state, [&] { out = at::Tensor(); out = forward(q, k, v); });
      break;
    }
    case Pass::backward: {
      for (at::Tensor* t : {&q, &k, &v}) t->set_requires_grad(true);
      out = forward(q, k, v);  // setup: the graph, kept for every timed backward
      torch::autograd::variable_list grads;
      measured_loop(state, [&] {
        grads.clear();
        grads = torch::autograd::grad({out}, {q, k, v}, {dout}, /*retain_graph=*/true);
      });
      break;
    }
    case Pass::forward_backward: {
      for (at::Tensor* t : {&q, &k, &v}) t->set_requires_grad(true);
      torch::autograd::variable_list grads;
      measured_loop(state, [&] {
        grads.clear();
        const at::Tensor o = forward(q, k, v);
        grads = torch::autograd::grad({o}, {q, k, v}, {dout});
      });
      break;
    }
  }
}

std::vector<float> libtorch_attention_out(const Contender& contender, const Mask& mask, const AttentionShape& s,
                                          const std::vector<float>& q, const std::vector<float>& k,
                                          const std::vector<float>& v) {
  const AttentionCase c{.contender = contender, .mask = mask, .batch = s.batch, .heads = s.heads, .seq_len = s.seq_q,
                        .head_dim = s.head_dim};
  return libtorch_case_out(c, q, k, v);
}

std::vector<float> libtorch_case_out(const AttentionCase& c, const std::vector<float>& q, const std::vector<float>& k,
                                     const std::vector<float>& v) {
  const at::NoGradGuard no_grad;
  const std::vector<std::int64_t> q_sizes = {c.batch, c.heads, c.queries(), c.head_dim};
  const std::vector<std::int64_t> kv_sizes = {c.batch, c.kv_heads(), c.seq_len, c.head_dim};
  const auto wrap = [&](const std::vector<float>& x, const std::vector<std::int64_t>& sizes) {
    return at::from_blob(const_cast<float*>(x.data()), sizes, at::kFloat);
  };
  const at::Tensor out =
      make_forward(c.contender, c)(wrap(q, q_sizes), wrap(k, kv_sizes), wrap(v, kv_sizes)).contiguous();
  return std::vector<float>(out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
}

namespace {

// Times forward + autograd backward of `forward` (inputs -> output) with upstream gradient dy,
// gradients with respect to every tensor in `inputs`.
template <class Forward>
void layer_twin(benchmark::State& state, std::vector<at::Tensor> inputs, Forward forward, double flop) {
  for (at::Tensor& t : inputs) t.set_requires_grad(true);
  at::Tensor dy;
  {
    const at::NoGradGuard no_grad;
    const at::Tensor y = forward(inputs);
    dy = y.dim() == 0 ? at::ones({}, at::kFloat) : uniform_tensor(y.sizes(), 99);
  }
  torch::autograd::variable_list grads;
  measured_loop(state, [&] {
    grads.clear();
    const at::Tensor y = forward(inputs);
    grads = torch::autograd::grad({y}, inputs, {dy});
  });
  set_flop_counters(state, flop, flop);
}

std::string layer_name(const char* op, const LayerSizes& s, std::int64_t n, int threads, const char* sizes) {
  return layer_benchmark_name(op, "libtorch", s, n, threads, sizes);
}

}  // namespace

void register_libtorch_layer_benchmarks(const BenchConfig& config) {
  const LayerSizes s = config.layer_sizes;
  const int threads = config.threads;
  const double d = static_cast<double>(s.model_dim);
  for (const std::int64_t n : config.layer_tokens) {
    const auto cost = [&](const char* op) { return layer_case_cost(op, true, n, config); };
    register_timed(layer_name("linear", s, n, threads, "F"), cost("linear"), [=](benchmark::State& state) {
      layer_twin(state, {uniform_tensor({n, s.model_dim}, 1), uniform_tensor({s.ffn_dim, s.model_dim}, 2),
                         uniform_tensor({s.ffn_dim}, 3)},
                 [](const std::vector<at::Tensor>& in) { return at::linear(in[0], in[1], in[2]); },
                 layer_flop("linear", s, n));
    });
    register_timed(layer_name("layer_norm", s, n, threads, ""), cost("layer_norm"), [=](benchmark::State& state) {
      layer_twin(state, {uniform_tensor({n, s.model_dim}, 1), uniform_tensor({s.model_dim}, 2),
                         uniform_tensor({s.model_dim}, 3)},
                 [&](const std::vector<at::Tensor>& in) {
                   return at::layer_norm(in[0], {s.model_dim}, in[1], in[2], 1e-5);
                 },
                 layer_flop("layer_norm", s, n));
    });
    register_timed(layer_name("gelu", s, n, threads, "F"), cost("gelu"), [=](benchmark::State& state) {
      layer_twin(state, {uniform_tensor({n, s.ffn_dim}, 1)},
                 [](const std::vector<at::Tensor>& in) { return at::gelu(in[0], "tanh"); },
                 layer_flop("gelu", s, n));
    });
    register_timed(layer_name("feed_forward", s, n, threads, "F"), cost("feed_forward"), [=](benchmark::State& state) {
      layer_twin(state, {uniform_tensor({n, s.model_dim}, 1), uniform_tensor({s.ffn_dim, s.model_dim}, 2),
                         uniform_tensor({s.ffn_dim}, 3), uniform_tensor({s.model_dim, s.ffn_dim}, 4),
                         uniform_tensor({s.model_dim}, 5)},
                 [](const std::vector<at::Tensor>& in) {
                   return at::linear(at::gelu(at::linear(in[0], in[1], in[2]), "tanh"), in[3], in[4]);
                 },
                 layer_flop("feed_forward", s, n));
    });
    register_timed(layer_name("attention", s, n, threads, "H"), cost("attention"), [=](benchmark::State& state) {
      const std::int64_t h = s.heads, dh = s.model_dim / s.heads;
      const at::Tensor causal = twin::additive_mask(Mask::causal(), n, n);
      const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
      std::vector<at::Tensor> in = {uniform_tensor({n, s.model_dim}, 1)};
      for (std::uint64_t p = 0; p < 4; ++p) {
        in.push_back(uniform_tensor({s.model_dim, s.model_dim}, 10 + p) * static_cast<float>(1.0 / std::sqrt(d)));
        in.push_back(uniform_tensor({s.model_dim}, 20 + p));
      }
      layer_twin(state, in,
                 [&](const std::vector<at::Tensor>& x) {
                   // (N, D) -> (H, N, dh) per projection
                   const auto heads = [&](const at::Tensor& y) { return y.view({n, h, dh}).transpose(0, 1); };
                   const at::Tensor q = heads(at::linear(x[0], x[1], x[2]));
                   const at::Tensor k = heads(at::linear(x[0], x[3], x[4]));
                   const at::Tensor v = heads(at::linear(x[0], x[5], x[6]));
                   const at::Tensor p = at::softmax(at::matmul(q, k.transpose(-2, -1)) * scale + causal, -1);
                   const at::Tensor o = at::matmul(p, v).transpose(0, 1).reshape({n, s.model_dim});
                   return at::linear(o, x[7], x[8]);
                 },
                 layer_flop("attention", s, n));
    });
    register_timed(layer_name("cross_entropy", s, n, threads, "V"), cost("cross_entropy"), [=](benchmark::State& state) {
      at::Tensor targets = at::empty({n}, at::kLong);
      for (std::int64_t i = 0; i < n; ++i) targets[i] = (i * 7919) % s.vocab;
      layer_twin(state, {uniform_tensor({n, s.vocab}, 1)},
                 [&](const std::vector<at::Tensor>& in) { return at::cross_entropy_loss(in[0], targets); },
                 layer_flop("cross_entropy", s, n));
    });
  }
}

}  // namespace ped::bench
