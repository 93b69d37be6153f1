#include "verify/footprint.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <stdexcept>

#include "verify/ops/op_cases.hpp"

namespace ped::verify {

namespace {

using FootprintFn = std::function<Footprint(const Dims&)>;

// One formula per op, from the inputs its make() draws (see verify/ops/<op>_case.cpp).
const std::map<std::string, FootprintFn>& formulas() {
  static const std::map<std::string, FootprintFn> table = [] {
    std::map<std::string, FootprintFn> t;
    // x = W_E[:, ids]: wte (D, V), ids N
    t["token_embedding"] = [](const Dims& d) {
      const double D = d.D, N = d.N, V = d.V;
      return Footprint{shape_string({{"N", d.N}, {"D", d.D}, {"V", d.V}}), D * V, D * V, D * N, N};
    };
    // p = W_P[:, o : o+N]: wpe (D, T)
    t["positional_embedding"] = [](const Dims& d) {
      const double D = d.D, N = d.N, T = d.T;
      return Footprint{shape_string({{"N", d.N}, {"D", d.D}, {"T", d.T}}), D * T, D * T, D * N, 0};
    };
    // y = W x + b: x (I, N), w (O, I), b (O)
    t["linear"] = [](const Dims& d) {
      const double N = d.N, I = d.I, O = d.O, in = I * N + O * I + O;
      return Footprint{shape_string({{"N", d.N}, {"I", d.I}, {"O", d.O}}), in, in, O * N, 0};
    };
    // x (I, N), w0 (O, I) and b0 (O) frozen, a (R, I), b (O, R); A x (R, N) cached
    t["lora_linear"] = [](const Dims& d) {
      const double N = d.N, I = d.I, O = d.O, R = d.R;
      return Footprint{shape_string({{"N", d.N}, {"I", d.I}, {"O", d.O}, {"R", d.R}}),
                       I * N + O * I + O + R * I + O * R, I * N + R * I + O * R, O * N, 2 * R * N};
    };
    // x (D, N), gamma, beta (D); xhat, g and dx temporaries (D, N)
    t["layer_norm"] = [](const Dims& d) {
      const double D = d.D, N = d.N, in = D * N + 2 * D;
      return Footprint{shape_string({{"N", d.N}, {"D", d.D}}), in, in, D * N, 3 * D * N};
    };
    // x (D, N); tanh or Phi and the derivative (D, N)
    const FootprintFn gelu = [](const Dims& d) {
      const double D = d.D, N = d.N;
      return Footprint{shape_string({{"N", d.N}, {"D", d.D}}), D * N, D * N, D * N, 2 * D * N};
    };
    t["gelu_tanh"] = gelu;
    t["gelu_erf"] = gelu;
    // s (N, K); P and dS (N, K)
    t["softmax"] = [](const Dims& d) {
      const double N = d.N, K = d.K;
      return Footprint{shape_string({{"N", d.N}, {"K", d.K}}), N * K, N * K, N * K, 2 * N * K};
    };
    // logits (V, N), targets N; softmax and dZ (V, N); the loss is one number
    t["cross_entropy"] = [](const Dims& d) {
      const double N = d.N, V = d.V;
      return Footprint{shape_string({{"N", d.N}, {"V", d.V}}), V * N, V * N, 1, 2 * V * N + N};
    };
    // x (D, N), four (D, D) weights and (D) biases; Q, K, V, O and their gradients (D, N); per head
    // S, P, dP, dS (N, N)
    t["attention"] = [](const Dims& d) {
      const double D = d.D, N = d.N, H = d.H, in = D * N + 4 * D * D + 4 * D;
      return Footprint{shape_string({{"N", d.N}, {"D", d.D}, {"H", d.H}}), in, in, D * N,
                       4 * H * N * N + 8 * D * N};
    };
    // x, fx (D, N)
    t["residual"] = [](const Dims& d) {
      const double D = d.D, N = d.N;
      return Footprint{shape_string({{"N", d.N}, {"D", d.D}}), 2 * D * N, 2 * D * N, D * N, 0};
    };
    // x (D, N), w1 (F, D), b1 (F), w2 (D, F), b2 (D); h, a, da, dh (F, N)
    t["feed_forward"] = [](const Dims& d) {
      const double D = d.D, N = d.N, F = d.F, in = D * N + 2 * F * D + F + D;
      return Footprint{shape_string({{"N", d.N}, {"D", d.D}, {"F", d.F}}), in, in, D * N, 4 * F * N};
    };
    // the attention and feed-forward inputs plus two layer norms; both layers' intermediates and the
    // block's own (D, N) activations
    t["transformer_block"] = [](const Dims& d) {
      const double D = d.D, N = d.N, H = d.H, F = d.F;
      const double in = D * N + 4 * D + (4 * D * D + 4 * D) + (2 * F * D + F + D);
      return Footprint{shape_string({{"N", d.N}, {"D", d.D}, {"H", d.H}, {"F", d.F}}), in, in, D * N,
                       4 * H * N * N + 16 * D * N + 4 * F * N};
    };
    // q (d, B H Nq), k and v (d, B H Nk); out (d, B H Nq) and lse (B H Nq). LibTorch's twin holds
    // scores, masked scores, probabilities and their gradients for all (B, H); the naive kernel S, P
    // and dS of one (b, h) in double; the explicit mask (Nq, Nk) twice as bytes.
    const FootprintFn sdpa = [](const Dims& d) {
      const double nk = d.Nk > 0 ? d.Nk : d.N, B = d.B, H = d.H, N = d.N, Dh = d.Dh;
      const double in = Dh * B * H * (N + 2 * nk);
      return Footprint{shape_string({{"B", d.B}, {"H", d.H}, {"Nq", d.N}, {"Nk", d.Nk > 0 ? d.Nk : d.N}, {"d", d.Dh}}),
                       in, in, B * H * N * (Dh + 1), 5 * B * H * N * nk + 3 * N * nk + N * nk / 4};
    };
    t["sdpa"] = sdpa;
    t["sdpa_large_scores"] = sdpa;
    // The tiny GPT of gpt_case.cpp: 2 layers, LoRA on q, v, o and the MLP. Parameters: wte (D, V),
    // wpe (D, T), per layer two layer norms (4 D), four (D, D) projections with biases, w1 (F, D),
    // b1 (F), w2 (D, F), b2 (D); the final layer norm (2 D). Adapters per layer: (R, D) and (D, R)
    // for q, v and o; (R, D) and (F, R) for w1; (R, F) and (D, R) for w2. Activations per layer and
    // token: about 12 of width D and 3 of width F, and S, P, dS (N, N) per sequence and head;
    // the logits, their softmax and gradient (V, B N).
    const auto gpt = [](bool lora) {
      return [lora](const Dims& d) {
        const double B = d.B, N = d.N, V = d.V, T = d.T, D = d.D, H = d.H, F = d.F, R = d.R, L = 2;
        const double base = D * V + D * T + L * (4 * D + 4 * D * D + 4 * D + 2 * F * D + F + D) + 2 * D;
        const double adapters = lora ? L * (8 * R * D + 2 * R * F) : 0;
        const double tokens = B * N;
        Footprint f{lora ? shape_string({{"B", d.B}, {"N", d.N}, {"V", d.V}, {"T", d.T}, {"D", d.D}, {"H", d.H},
                                         {"F", d.F}, {"R", d.R}})
                         : shape_string({{"B", d.B}, {"N", d.N}, {"V", d.V}, {"T", d.T}, {"D", d.D}, {"H", d.H},
                                         {"F", d.F}}),
                    base + adapters, lora ? adapters : base, 1,
                    L * (12 * D * tokens + 3 * F * tokens + 3 * B * H * N * N) + 3 * V * tokens + 2 * tokens};
        return f;
      };
    };
    t["gpt"] = gpt(false);
    t["gpt_lora"] = gpt(true);
    return t;
  }();
  return table;
}

}  // namespace

Footprint footprint(const std::string& op, const Dims& dims, const std::string& feature_set) {
  if (op == "sdpa_features") {
    // As sdpa with k, v of H_kv heads, plus the sinks (differentiable) and ALiBi slopes (not), H
    // each, where the set has them; the twin runs one sequence at a time, holding no more than sdpa's.
    // No set: the largest, every feature with H_kv = H.
    const std::string set = feature_set.empty() ? "all" : feature_set;
    const std::uint32_t bits = sdpa_feature_set_bits(set);
    const Dims& d = dims;
    const double nk = d.Nk > 0 ? d.Nk : d.N, B = d.B, H = d.H, N = d.N, Dh = d.Dh;
    const double hkv = feature_set.empty() ? H : static_cast<double>(sdpa_features_kv_heads(set, d));
    const double sinks = (bits & attention_feature_bit(AttentionFeature::sinks)) ? H : 0;
    const double slopes = (bits & attention_feature_bit(AttentionFeature::alibi)) ? H : 0;
    const double diff = Dh * B * (H * N + 2 * hkv * nk) + sinks;
    return Footprint{sdpa_features_shape(set, d), diff + slopes, diff, B * H * N * (Dh + 1),
                     5 * B * H * N * nk + 3 * N * nk + N * nk / 4};
  }
  const auto it = formulas().find(op);
  if (it == formulas().end()) throw std::logic_error("footprint: no memory formula for op '" + op + "'");
  return it->second(dims);
}

double resident_bytes(const Footprint& f) { return 8 * f.inputs; }

double check_bytes(const Footprint& f, bool finite_differences, std::size_t full_jacobian_max) {
  double bytes = 8 * (kWorkingCopies * (f.inputs + f.outputs) + kIntermediateCopies * f.intermediates);
  if (finite_differences) {
    bytes += 16 * std::min(f.outputs * f.differentiable_inputs, static_cast<double>(full_jacobian_max));
  }
  return bytes;
}

std::uint64_t check_cost(const Footprint& f, std::size_t differentiable_tensors, Dtype dtype, Reference reference,
                         const FiniteDifferenceOptions& fd, bool isolated) {
  const double sizes = f.inputs + f.outputs + f.intermediates;
  const double ours = kEvaluationOverhead + sizes, twin = kLibTorchEvaluationOverhead + sizes;
  const double pass = 1 + kBackwardEvaluations;  // a forward and its backward
  double visits = 0;
  switch (reference) {
    case Reference::libtorch:
      visits = pass * ours + pass * twin + (is_reduced(dtype) ? pass * ours : 0);
      break;
    case Reference::finite_difference:
      if (f.outputs * f.differentiable_inputs <= static_cast<double>(fd.full_jacobian_max_entries)) {
        visits = (1 + 4 * f.differentiable_inputs + kBackwardEvaluations * f.outputs) * ours;
      } else {
        visits =
            (1 + kBackwardEvaluations + 4.0 * static_cast<double>(differentiable_tensors) * fd.directions) * ours;
      }
      break;
    case Reference::naive:
      visits = 2 * pass * ours;
      break;
  }
  const double cost = std::ceil(visits + (isolated ? kChildProcessCost : 0));
  // Sizes of up to 1e6 each multiply past what an integer holds: such a problem is refused by the
  // memory budget long before its cost matters; saturate rather than wrap.
  constexpr double kMaxCost = 9e18;
  return static_cast<std::uint64_t>(std::min(cost, kMaxCost));
}

}  // namespace ped::verify
