// attention/<variant>/<pass>/float/<mask>/B:<b>/H:<h>/N:<n>/d:<d>/T:<t> benchmarks: our four
// variants and the LibTorch contenders, with FLOP, peak-memory and ceiling counters, and
// configurations over the memory budget skipped with SkipWithError (never attempted).
#pragma once

#include "bench/bench_config.hpp"

#include <benchmark/benchmark.h>

namespace ped::bench {

// The body of one attention benchmark (any contender).
void attention_benchmark(benchmark::State& state, const AttentionCase& c);

void register_attention_benchmark(const AttentionCase& c);
void register_attention_benchmarks(const BenchConfig& config);

}  // namespace ped::bench
