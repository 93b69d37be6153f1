// The whole tiny GPT as one op: every parameter a differentiable input (with LoRA: the adapters; the
// frozen base rides along as non-differentiable inputs), the mean cross-entropy of a seeded batch the
// output, and the LibTorch twin of twins/gpt_twin.hpp. The variant picks the attention path:
// empty = the reference per-head matrix path, else that kernel of variants/.
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "twins/gpt_twin.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

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

// The family causal, or a concrete mask in Mask::parse's text.
Mask mask_of(const std::string& name) {
  if (name.empty() || name == "causal") return Mask::causal();
  if (const std::optional<Mask> concrete = concrete_mask(name)) return *concrete;
  throw std::invalid_argument("gpt: unknown mask family '" + name + "', expected causal or a concrete mask");
}

std::string gpt_shape(const Dims& d, bool lora) {
  return lora ? shape_string({{"B", d.B}, {"N", d.N}, {"V", d.V}, {"T", d.T}, {"D", d.D}, {"H", d.H}, {"F", d.F}, {"R", d.R}})
              : shape_string({{"B", d.B}, {"N", d.N}, {"V", d.V}, {"T", d.T}, {"D", d.D}, {"H", d.H}, {"F", d.F}});
}

// A concrete mask applies when it fits the N x N scores and leaves every token a key to attend to:
// the model's softmax (and its LibTorch twin's) over a row without one is 0 / 0.
void check_concrete_mask(const std::string& op, bool lora, const Mask& mask, const Dims& d) {
  const std::string where = "op " + op + ", shape " + gpt_shape(d, lora);
  mask.validate(where.c_str(), d.N, d.N);
  std::vector<KeyInterval> keys;
  for (std::int64_t i = 0; i < d.N; ++i) {
    mask.row_intervals(i, d.N, d.N, keys);
    if (keys.empty()) {
      throw std::invalid_argument(where + ": token " + std::to_string(i) +
                                  " sees no key, and the model's softmax needs one in every row");
    }
  }
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
  c.check_concrete_mask = [name, lora](const Mask& mask, const Dims& d) { check_concrete_mask(name, lora, mask, d); };
  // The reference path takes every mask; a kernel the kinds it declares.
  c.runs = [](const CaseParams& cp) {
    return cp.variant.empty() || attention_impl(cp.variant).supports(mask_of(cp.mask));
  };
  c.make = [name, lora](const CaseParams& cp, std::uint64_t seed) {
    const Dims& d = cp.dims;
    Problem p{.op = name, .variant = cp.variant,
              .shape = gpt_shape(d, lora),
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
