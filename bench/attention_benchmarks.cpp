#include "bench/attention_benchmarks.hpp"

#include "bench/harness.hpp"
#include "bench/libtorch_benchmarks.hpp"

#include <cmath>
#include <exception>
#include <vector>

namespace ped::bench {
namespace {

// B batch, H heads, N tokens, d head dim. Buffers of one benchmark, allocated in setup.
struct AttentionBuffers {
  std::vector<float> q, k, v;     // (B, H, N, d) inputs
  std::vector<float> out;         // (B, H, N, d)
  std::vector<RowStats<float>> stats;  // (B, H, N), kept for backward
  std::vector<float> dout;        // (B, H, N, d) upstream gradient
  std::vector<float> dq, dk, dv;  // (B, H, N, d)

  explicit AttentionBuffers(const AttentionShape& s) {
    const auto tensor = static_cast<std::size_t>(s.batch * s.heads * s.seq_q * s.head_dim);
    for (std::vector<float>* t : {&q, &k, &v, &out, &dout, &dq, &dk, &dv}) t->resize(tensor);
    stats.resize(static_cast<std::size_t>(s.batch * s.heads * s.seq_q));
    fill_uniform(q.data(), tensor, 1);
    fill_uniform(k.data(), tensor, 2);
    fill_uniform(v.data(), tensor, 3);
    fill_uniform(dout.data(), tensor, 4);
  }
};

void our_attention_benchmark(benchmark::State& state, const AttentionCase& c) {
  const AttentionImpl& impl = implementation_of(c.contender);
  const AttentionShape shape = c.shape();
  const Mask& mask = c.mask;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const AttentionOptions options{.threads = c.threads};
  AttentionBuffers b(shape);
  const auto forward = [&] {
    run_forward<float>(impl, shape, mask, scale, b.q.data(), b.k.data(), b.v.data(), b.out.data(), b.stats.data(),
                       options);
  };
  const auto backward = [&] {
    run_backward<float>(impl, shape, mask, scale, b.q.data(), b.k.data(), b.v.data(), b.out.data(), b.stats.data(),
                        b.dout.data(), b.dq.data(), b.dk.data(), b.dv.data(), options);
  };
  switch (c.pass) {
    case Pass::forward:
      measured_loop(state, forward);
      break;
    case Pass::backward:
      forward();  // setup: out and stats for the timed backward
      measured_loop(state, backward);
      break;
    case Pass::forward_backward:
      measured_loop(state, [&] {
        forward();
        backward();
      });
      break;
  }
  benchmark::DoNotOptimize(b.out.data());
  benchmark::DoNotOptimize(b.dq.data());
}

}  // namespace

void attention_benchmark(benchmark::State& state, const AttentionCase& c) {
  if (const auto failed = settings().failed_contenders.find(c.contender.name);
      failed != settings().failed_contenders.end()) {
    state.SkipWithError(failed->second.c_str());
    return;
  }
  const std::int64_t estimate = estimated_bytes(c);
  if (const auto why = over_budget(estimate, settings().config.memory_budget_gib)) {
    state.SkipWithError(why->c_str());
    return;
  }
  const AttentionShape shape = c.shape();
  const std::int64_t pairs = visible_pairs(c.mask, shape.seq_q, shape.seq_k);
  // an exception skips the counters below; register_timed turns it into an error row
  if (is_libtorch(c.contender)) {
    libtorch_attention_benchmark(state, c);
  } else {
    our_attention_benchmark(state, c);
  }
  set_flop_counters(state, model_flop(c.pass, c.mask, shape), useful_flop(c.pass, pairs, shape));
  state.counters["visible_pairs"] = benchmark::Counter(static_cast<double>(pairs));
  state.counters["estimated_bytes"] = benchmark::Counter(static_cast<double>(estimate));
}

void register_attention_benchmark(const AttentionCase& c) {
  register_timed(c.name(), [c](benchmark::State& state) { attention_benchmark(state, c); });
}

void register_attention_benchmarks(const BenchConfig& config) {
  for (const AttentionCase& c : attention_cases(config)) register_attention_benchmark(c);
}

}  // namespace ped::bench
