#include "bench/attention_benchmarks.hpp"

#include "bench/harness.hpp"
#include "bench/libtorch_benchmarks.hpp"

#include <chrono>
#include <cmath>
#include <exception>
#include <numeric>
#include <set>
#include <string>
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

}  // namespace

void set_phase_counters(benchmark::State& state, const PhaseTimes& times, double wall_ns, int threads) {
  const std::int64_t timed = std::accumulate(times.ns.begin(), times.ns.end(), std::int64_t{0});
  if (timed == 0 || !(wall_ns > 0.0) || threads < 1) return;  // an implementation that times no phase
  const double capacity = wall_ns * threads;
  for (std::size_t p = 0; p < kAttentionPhaseCount; ++p) {
    state.counters[std::string(phase_counter_prefix) + to_string(static_cast<AttentionPhase>(p))] =
        benchmark::Counter(static_cast<double>(times.ns[p]) / capacity);
  }
  state.counters[std::string(phase_counter_prefix) + phase_other] =
      benchmark::Counter(std::max(0.0, 1.0 - static_cast<double>(timed) / capacity));
}

namespace {

// After the timed iterations of a benchmark's first repetition, one more call of the same pass with
// AttentionOptions::phases set, so the timing of the phases leaves the measured times alone (and
// costs one call per benchmark, not per repetition).
template <class Call>
void time_phases(benchmark::State& state, const AttentionCase& c, const AttentionImpl& impl, AttentionOptions options,
                 int threads, Call&& call) {
  static std::set<std::string> timed;  // benchmarks whose phases this process has timed
  if (!impl.times_phases || memory_run_active() || !timed.insert(c.name()).second) return;
  PhaseTimes times;
  options.phases = &times;
  const auto t0 = std::chrono::steady_clock::now();
  call(options);
  const double wall = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  set_phase_counters(state, times, wall, threads);
}

void our_attention_benchmark(benchmark::State& state, const AttentionCase& c) {
  const AttentionImpl& impl = implementation_of(c.contender);
  const AttentionShape shape = c.shape();
  const Mask& mask = c.mask;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const AttentionOptions options{.threads = c.threads};
  AttentionBuffers b(shape);
  const auto forward_with = [&](const AttentionOptions& o) {
    run_forward<float>(impl, shape, mask, scale, b.q.data(), b.k.data(), b.v.data(), b.out.data(), b.stats.data(), o);
  };
  const auto backward_with = [&](const AttentionOptions& o) {
    run_backward<float>(impl, shape, mask, scale, b.q.data(), b.k.data(), b.v.data(), b.out.data(), b.stats.data(),
                        b.dout.data(), b.dq.data(), b.dk.data(), b.dv.data(), o);
  };
  const auto forward = [&] { forward_with(options); };
  const auto backward = [&] { backward_with(options); };
  switch (c.pass) {
    case Pass::forward:
      measured_loop(state, forward);
      time_phases(state, c, impl, options, c.threads, forward_with);
      break;
    case Pass::backward:
      forward();  // setup: out and stats for the timed backward
      measured_loop(state, backward);
      time_phases(state, c, impl, options, c.threads, backward_with);
      break;
    case Pass::forward_backward:
      measured_loop(state, [&] {
        forward();
        backward();
      });
      time_phases(state, c, impl, options, c.threads, [&](const AttentionOptions& o) {
        forward_with(o);
        backward_with(o);
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
