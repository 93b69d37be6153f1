#include "bench/attention_benchmarks.hpp"

#include "bench/harness.hpp"
#include "bench/libtorch_benchmarks.hpp"

#include <chrono>
#include <cmath>
#include <exception>
#include <numeric>
#include <map>
#include <string>
#include <vector>

namespace ped::bench {
namespace {

// B batch, H heads, H_kv key/value heads, Nq queries, Nk keys, d head dim. Buffers of one
// benchmark, allocated in setup.
struct AttentionBuffers {
  std::vector<float> q;           // (B, H, Nq, d)
  std::vector<float> k, v;        // (B, H_kv, Nk, d)
  std::vector<float> out;         // (B, H, Nq, d)
  std::vector<RowStats<float>> stats;  // (B, H, Nq), kept for backward
  std::vector<float> dout;        // (B, H, Nq, d) upstream gradient
  std::vector<float> dq;          // (B, H, Nq, d)
  std::vector<float> dk, dv;      // (B, H_kv, Nk, d)

  explicit AttentionBuffers(const AttentionShape& s) {
    const auto queries = static_cast<std::size_t>(s.batch * s.heads * s.seq_q * s.head_dim);
    const auto keys = static_cast<std::size_t>(s.batch * s.kv_heads() * s.seq_k * s.head_dim);
    for (std::vector<float>* t : {&q, &out, &dout, &dq}) t->resize(queries);
    for (std::vector<float>* t : {&k, &v, &dk, &dv}) t->resize(keys);
    stats.resize(static_cast<std::size_t>(s.batch * s.heads * s.seq_q));
    fill_uniform(q.data(), queries, 1);
    fill_uniform(k.data(), keys, 2);
    fill_uniform(v.data(), keys, 3);
    fill_uniform(dout.data(), queries, 4);
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

// After the timed iterations of a benchmark, one more call of the same pass with
// AttentionOptions::phases set, so the timing of the phases leaves the measured times alone (and
// costs one call per benchmark, not per repetition). Google Benchmark calls a benchmark's function
// several times per repetition while it searches for the iteration count, and reports only the
// last call: the first call times the phases, and every call (every repetition's too) reports them.
template <class Call>
void time_phases(benchmark::State& state, const AttentionCase& c, const AttentionImpl& impl, AttentionOptions options,
                 int threads, Call&& call) {
  static std::map<std::string, benchmark::UserCounters> timed;  // per benchmark: its phase counters
  if (!impl.times_phases || memory_run_active()) return;
  if (const auto found = timed.find(c.name()); found != timed.end()) {
    for (const auto& [name, counter] : found->second) state.counters[name] = counter;
    return;
  }
  PhaseTimes times;
  options.phases = &times;
  const auto t0 = std::chrono::steady_clock::now();
  call(options);
  const double wall = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  set_phase_counters(state, times, wall, threads);
  benchmark::UserCounters& kept = timed[c.name()];
  for (const auto& [name, counter] : state.counters) {
    if (name.starts_with(phase_counter_prefix)) kept[name] = counter;
  }
}

void our_attention_benchmark(benchmark::State& state, const AttentionCase& c) {
  const AttentionImpl& impl = implementation_of(c.contender);
  const AttentionShape shape = c.shape();
  const Mask& mask = c.mask;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const std::vector<std::int64_t> lengths = c.lengths();  // empty: whole sequences
  AttentionOptions options{.threads = c.threads};
  if (!lengths.empty()) {
    options.features.seqlens_q = lengths.data();
    options.features.seqlens_k = lengths.data();
  }
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
  const std::int64_t pairs = case_visible_pairs(c);
  // an exception skips the counters below; register_timed turns it into an error row
  if (is_libtorch(c.contender)) {
    libtorch_attention_benchmark(state, c);
  } else {
    our_attention_benchmark(state, c);
  }
  const CaseFlop flop = case_flop(c);
  set_flop_counters(state, flop.model, flop.useful);
  state.counters["visible_pairs"] = benchmark::Counter(static_cast<double>(pairs));
  state.counters["estimated_bytes"] = benchmark::Counter(static_cast<double>(estimate));
  set_token_counters(state, c);
}

void set_token_counters(benchmark::State& state, const AttentionCase& c) {
  using benchmark::Counter;
  const auto tokens = static_cast<double>(query_tokens(c));
  state.counters["query_tokens"] = Counter(tokens);
  state.counters["tokens_per_second"] = Counter(tokens, Counter::kIsIterationInvariantRate);
  if (c.queries() == c.seq_len || c.pass != Pass::forward) return;  // the bandwidth counters: decoding only
  const double bytes = kv_bytes(c);
  state.counters["kv_bytes"] = Counter(bytes);
  state.counters["kv_bytes_per_second"] = Counter(bytes, Counter::kIsIterationInvariantRate, Counter::kIs1000);
  set_fraction_of_ceiling(state, "copy_gbps", settings().copy_gbps, "fraction_of_copy", bytes);
}

namespace {

void plan_attention_benchmark(const AttentionCase& c, const BenchConfig& config) {
  register_timed(c.name(), attention_case_cost(c, config),
                 [c](benchmark::State& state) { attention_benchmark(state, c); });
}

}  // namespace

void register_attention_benchmark(const AttentionCase& c) { plan_attention_benchmark(c, settings().config); }

void register_attention_benchmarks(const BenchConfig& config) {
  for (const AttentionCase& c : attention_cases(config)) plan_attention_benchmark(c, config);
}

}  // namespace ped::bench
