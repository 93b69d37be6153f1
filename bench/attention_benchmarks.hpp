// attention/<variant>/<pass>/float/<mask>/B:<b>/H:<h>/N:<n>/d:<d>/T:<t> benchmarks: our four
// variants and the LibTorch contenders, with FLOP, peak-memory and ceiling counters, and
// configurations over the memory budget skipped with SkipWithError (never attempted).
#pragma once

#include "bench/bench_config.hpp"

#include <benchmark/benchmark.h>

namespace ped::bench {

// Where the time goes: after the timed iterations of its first repetition, each benchmark of a
// variant that times its phases (AttentionOptions::phases: blocked, flash, sparse) runs one more
// call of its pass with the timing on and reports, per phase, the counter phase_<name> = the phase's
// time summed over threads / (threads x the call's wall time), and phase_other = 1 - their sum
// (argument and non-finite checks, D = rowsum(dO o O), threads waiting). `report convert` writes
// them to BENCH.phases.csv.
inline constexpr const char* phase_counter_prefix = "phase_";
inline constexpr const char* phase_other = "other";
// Sets those counters from the phases of one call of `wall_ns` on `threads` threads; nothing when
// no phase was timed.
void set_phase_counters(benchmark::State& state, const PhaseTimes& times, double wall_ns, int threads);

// Counters of a case's tokens and bytes: query_tokens (real query tokens per call: no padding) and
// its rate tokens_per_second; for a decoding case (forward, Nq != Nk) also kv_bytes (bytes of K and
// V read, each element once: kv_bytes() of bench_config.hpp), its rate kv_bytes_per_second,
// copy_gbps (the in-run copy bandwidth ceiling, bandwidth_ceiling.hpp) and fraction_of_copy = the
// rate over the ceiling.
void set_token_counters(benchmark::State& state, const AttentionCase& c);

// The body of one attention benchmark (any contender).
void attention_benchmark(benchmark::State& state, const AttentionCase& c);

// Plan (harness.hpp: register_timed) one case at its cost under settings().config, or every case of
// attention_cases(config) at its cost under config.
void register_attention_benchmark(const AttentionCase& c);
void register_attention_benchmarks(const BenchConfig& config);

}  // namespace ped::bench
