// Column-major Armadillo: one token is one column. D model width, N tokens, H heads, F
// feed-forward width, V vocabulary.
#include "bench/layer_benchmarks.hpp"

#include "bench/harness.hpp"
#include "reference/attention.hpp"
#include "reference/cross_entropy.hpp"
#include "reference/feed_forward.hpp"
#include "reference/gelu.hpp"
#include "reference/layer_norm.hpp"
#include "reference/linear.hpp"

#include <cmath>

namespace ped::bench {
namespace {

using ref::Col;
using ref::Mat;

std::uint64_t g_seed = 1000;

Mat<float> uniform(arma::uword rows, arma::uword cols, float gain = 1.0f) {
  Mat<float> m(rows, cols);
  fill_uniform(m.memptr(), m.n_elem, ++g_seed);
  if (gain != 1.0f) m *= gain;
  return m;
}

Col<float> uniform_col(arma::uword rows) {
  Col<float> c(rows);
  fill_uniform(c.memptr(), c.n_elem, ++g_seed);
  return c;
}

std::string layer_name(const char* op, const LayerSizes& s, std::int64_t n, int threads, const char* sizes) {
  return layer_benchmark_name(op, "reference", s, n, threads, sizes);
}

}  // namespace

void register_reference_layer_benchmarks(const BenchConfig& config) {
  const LayerSizes s = config.layer_sizes;
  const int threads = config.threads;
  const auto D = static_cast<arma::uword>(s.model_dim), F = static_cast<arma::uword>(s.ffn_dim),
             V = static_cast<arma::uword>(s.vocab);
  const double d = static_cast<double>(D);
  for (const std::int64_t tokens : config.layer_tokens) {
    const auto cost = [&](const char* op) { return layer_case_cost(op, false, tokens, config); };
    const auto N = static_cast<arma::uword>(tokens);
    register_timed(layer_name("linear", s, tokens, threads, "F"), cost("linear"), [=](benchmark::State& state) {
      const Mat<float> x = uniform(D, N), w = uniform(F, D), dy = uniform(F, N);
      const Col<float> b = uniform_col(F);
      measured_loop(state, [&] {
        const Mat<float> y = ref::linear_forward(x, w, b);
        const ref::LinearGrads<float> g = ref::linear_backward(dy, x, w);
        benchmark::DoNotOptimize(y.memptr());
        benchmark::DoNotOptimize(g.dw.memptr());
      });
      set_flop_counters(state, layer_flop("linear", s, tokens), layer_flop("linear", s, tokens));
    });
    register_timed(layer_name("layer_norm", s, tokens, threads, ""), cost("layer_norm"), [=](benchmark::State& state) {
      const Mat<float> x = uniform(D, N), dy = uniform(D, N);
      const Col<float> gamma = uniform_col(D), beta = uniform_col(D);
      measured_loop(state, [&] {
        ref::LayerNormCache<float> cache;
        const Mat<float> y = ref::layer_norm_forward(x, gamma, beta, 1e-5f, cache);
        const ref::LayerNormGrads<float> g = ref::layer_norm_backward(dy, gamma, cache);
        benchmark::DoNotOptimize(y.memptr());
        benchmark::DoNotOptimize(g.dx.memptr());
      });
      set_flop_counters(state, layer_flop("layer_norm", s, tokens), layer_flop("layer_norm", s, tokens));
    });
    register_timed(layer_name("gelu", s, tokens, threads, "F"), cost("gelu"), [=](benchmark::State& state) {
      const Mat<float> x = uniform(F, N), dy = uniform(F, N);
      measured_loop(state, [&] {
        const Mat<float> y = ref::gelu_forward(x, ref::GeluApprox::tanh);
        const Mat<float> dx = ref::gelu_backward(dy, x, ref::GeluApprox::tanh);
        benchmark::DoNotOptimize(y.memptr());
        benchmark::DoNotOptimize(dx.memptr());
      });
      set_flop_counters(state, layer_flop("gelu", s, tokens), layer_flop("gelu", s, tokens));
    });
    register_timed(layer_name("feed_forward", s, tokens, threads, "F"), cost("feed_forward"), [=](benchmark::State& state) {
      const ref::FeedForwardParams<float> p{.w1 = uniform(F, D), .b1 = uniform_col(F), .w2 = uniform(D, F),
                                            .b2 = uniform_col(D)};
      const Mat<float> x = uniform(D, N), dy = uniform(D, N);
      measured_loop(state, [&] {
        ref::FeedForwardCache<float> cache;
        const Mat<float> y = ref::feed_forward_forward(x, p, ref::GeluApprox::tanh, cache);
        const ref::FeedForwardGrads<float> g = ref::feed_forward_backward(dy, p, cache);
        benchmark::DoNotOptimize(y.memptr());
        benchmark::DoNotOptimize(g.dx.memptr());
      });
      set_flop_counters(state, layer_flop("feed_forward", s, tokens), layer_flop("feed_forward", s, tokens));
    });
    register_timed(layer_name("attention", s, tokens, threads, "H"), cost("attention"), [=](benchmark::State& state) {
      const float gain = static_cast<float>(1.0 / std::sqrt(d));
      const ref::AttentionParams<float> p{.wq = uniform(D, D, gain), .wk = uniform(D, D, gain),
                                          .wv = uniform(D, D, gain), .wo = uniform(D, D, gain),
                                          .bq = uniform_col(D), .bk = uniform_col(D), .bv = uniform_col(D),
                                          .bo = uniform_col(D)};
      const ref::AttentionConfig<float> cfg{.heads = static_cast<arma::uword>(s.heads), .causal = true};
      const Mat<float> x = uniform(D, N), dy = uniform(D, N);
      measured_loop(state, [&] {
        ref::AttentionCache<float> cache;
        const Mat<float> y = ref::attention_forward(x, p, cfg, cache);
        const ref::AttentionGrads<float> g = ref::attention_backward(dy, p, cache);
        benchmark::DoNotOptimize(y.memptr());
        benchmark::DoNotOptimize(g.dx.memptr());
      });
      set_flop_counters(state, layer_flop("attention", s, tokens), layer_flop("attention", s, tokens));
    });
    register_timed(layer_name("cross_entropy", s, tokens, threads, "V"), cost("cross_entropy"), [=](benchmark::State& state) {
      const Mat<float> logits = uniform(V, N);
      ref::TokenIds targets(N);
      for (arma::uword i = 0; i < N; ++i) targets[i] = static_cast<std::int64_t>((i * 7919) % V);
      measured_loop(state, [&] {
        ref::CrossEntropyCache<float> cache;
        const float loss = ref::cross_entropy_forward(logits, targets, ref::kDefaultIgnoreIndex, cache);
        const Mat<float> dlogits = ref::cross_entropy_backward(cache);
        benchmark::DoNotOptimize(loss);
        benchmark::DoNotOptimize(dlogits.memptr());
      });
      set_flop_counters(state, layer_flop("cross_entropy", s, tokens), layer_flop("cross_entropy", s, tokens));
    });
  }
}

}  // namespace ped::bench
