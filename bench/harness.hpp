// What every benchmark of the suite shares: the run's settings, the in-run GEMM ceiling, the
// per-call peak-memory measurement (and the MemoryManager that reports it), progress lines, and
// the plan of the sweep from which one shard's benchmarks are registered (register_timed).
#pragma once

#include "bench/bench_config.hpp"
#include "bench/memory_accounting.hpp"
#include "core/shard.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <cstdint>
#include <string>
#include <vector>

namespace ped::bench {

// Settings of this run (set once by main or a test before registering).
struct RunSettings {
  BenchConfig config;
  double gemm_gflops = 0.0;  // in-run OpenBLAS SGEMM rate at config.threads
  double copy_gbps = 0.0;    // in-run memory copy bandwidth at config.threads (bandwidth_ceiling.hpp), GB/s
  // Contenders whose trial run failed (plugin_trial.hpp), with why: their benchmarks are skipped.
  std::map<std::string, std::string> failed_contenders;
};
RunSettings& settings();

// Sets OpenMP, OpenBLAS (and, where linked in, LibTorch) to `threads` threads.
void set_all_threads(int threads);

// Google Benchmark's MemoryManager, reporting max_bytes_used = the peak heap bytes above the level
// at the start of the measured call (the largest over the calls the memory run measures), the same
// quantity as the peak_bytes counter. Google Benchmark 1.7 runs min(16, iterations) extra
// iterations for it after each repetition; measured_loop makes only the first of them do the work,
// and only in the first repetition.
class CallPeakMemoryManager : public benchmark::MemoryManager {
 public:
  void Start() override;
  void Stop(Result* result) override;
  void Stop(Result& result) override { Stop(&result); }
};
CallPeakMemoryManager& memory_manager();
bool memory_run_active();
void record_call_peak(std::int64_t bytes);
// max_bytes_used the MemoryManager recorded for the running benchmark in an earlier repetition.
std::optional<std::int64_t> memory_peak_of_earlier_repetition();

// The JSON reporter with the MemoryManager results put back. Google Benchmark 1.7.1 keeps each
// repetition's MemoryManager::Result in a std::vector and hands the reporters pointers into it
// that the next repetition's push_back leaves dangling (JSONReporter then reads freed memory and
// crashes or prints garbage; fixed in later releases). This reporter points each iteration run at
// the result CallPeakMemoryManager recorded for that benchmark and repetition, and drops the
// pointer from aggregates. It also writes the coefficient of variation (the "cv" aggregate) of a
// counter that is 0 in every repetition as 0, not as Google Benchmark's NaN of 0/0, which is not
// JSON. Use it for every JSON output (display and --benchmark_out).
class MemoryJsonReporter : public benchmark::JSONReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override;
};

// "[k/n] name" on stderr when benchmark `index` (of the registered list) starts: k counts the
// benchmarks started so far, n is set_progress_total's (this shard's cases the filter selects).
void set_progress_total(std::size_t total);
void announce(std::size_t index, const std::string& name);

// Minor page faults of this process so far (getrusage, every thread): first touches of memory the
// kernel had not yet mapped, e.g. a fresh mmap (allocator.hpp).
std::int64_t minor_page_faults();

// Times `call` (state's loop) and measures its peak heap bytes above the start of each call.
// Sets the peak_bytes counter (largest over the timed calls) and page_faults (minor page faults per
// call, averaged over the timed calls; absent when there were none). In the MemoryManager's run,
// calls `call` once and leaves the remaining iterations empty.
template <class Call>
void measured_loop(benchmark::State& state, Call&& call) {
  if (memory_run_active()) {
    // A later repetition's memory run never gets here: register_timed reuses the first one's peak.
    bool first = true;
    for (auto _ : state) {
      if (first) {
        const memory::Region region;
        call();
        record_call_peak(region.peak_above_start());
        first = false;
      }
    }
    return;
  }
  std::int64_t peak = 0;
  const std::int64_t faults = minor_page_faults();
  for (auto _ : state) {
    const memory::Region region;
    call();
    peak = std::max(peak, region.peak_above_start());
  }
  state.counters["peak_bytes"] = benchmark::Counter(static_cast<double>(peak));
  // Left out when zero: Google Benchmark's coefficient-of-variation aggregate of an all-zero counter
  // is 0/0, which its JSON reporter writes as NaN (not JSON).
  if (const std::int64_t added = minor_page_faults() - faults; added > 0 && state.iterations() > 0) {
    state.counters["page_faults"] = benchmark::Counter(static_cast<double>(added), benchmark::Counter::kAvgIterations);
  }
}

// Counters of every attention-like benchmark: flop (per call, the model), useful_flop, their
// rates FLOPS and useful_FLOPS, gemm_gflops (the ceiling) and fraction_of_gemm.
void set_flop_counters(benchmark::State& state, double flop, double useful);
// An in-run ceiling and the fraction of it a benchmark reaches: counter `ceiling_name` = `ceiling`
// (per second, in units of 1e9: GFLOP/s, GB/s) and `fraction_name` = `amount` per iteration over it,
// as a rate. Nothing when the ceiling was not measured (0).
void set_fraction_of_ceiling(benchmark::State& state, const char* ceiling_name, double ceiling,
                             const char* fraction_name, double amount);

// Planning and registering. Every benchmark of a run is one case of the sweep: its key is its name,
// its cost the estimate of bench_config.hpp's cost model. register_timed only plans a benchmark;
// register_shard then registers with Google Benchmark the planned cases of one shard
// (ped::shard_cases over the planned costs), in plan order, each with the run's timing settings
// (UseRealTime, ms, min_time or fixed iterations) and progress announcement.
//
// The contract report merge relies on: each case is exactly one RegisterBenchmark (one benchmark
// family, no arguments), registered in shard_cases order and nothing registered besides, so that
// Google Benchmark's family_index of a JSON run is the position of its case in the manifest's
// shard_cases. (Google Benchmark numbers only the families --benchmark_filter selects: a filtered
// run has fewer families than shard_cases, and report merge refuses it as incomplete.)
void register_timed(const std::string& name, std::uint64_t cost, std::function<void(benchmark::State&)> fn);
// The planned cases not registered yet, in plan order: their names and costs.
std::vector<std::string> planned_names();
std::vector<std::uint64_t> planned_costs();
// Registers the planned cases of shard `s` (all of them for 0/1) and forgets the plan; returns
// their indices in the plan, in registration order (= shard_cases(planned_costs(), s)).
std::vector<std::size_t> register_shard(const ShardSpec& s = {});
// Registers the planned cases at `indices` (a shard manifest's case_indices), in that order, and
// forgets the plan.
void register_planned(const std::vector<std::size_t>& indices);
// Forgets the plan, registering nothing (--list-cases, tests).
void discard_plan();
// Plans every benchmark of the sweep of `config`, in the sweep's order: the gemm/ benchmark (--gemm),
// the attention cases (attention_cases), the reference layers and their LibTorch twins (--layers).
void plan_sweep(const BenchConfig& config);
// Names registered with Google Benchmark so far, in order.
const std::vector<std::string>& registered_names();

// Uniform values in [-1, 1) from a seeded splitmix64 stream (fast enough for 10^8 elements).
void fill_uniform(float* data, std::size_t count, std::uint64_t seed);

}  // namespace ped::bench
