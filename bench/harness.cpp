#include "bench/harness.hpp"

#include "bench/attention_benchmarks.hpp"
#include "bench/gemm_ceiling.hpp"
#include "bench/layer_benchmarks.hpp"
#include "bench/libtorch_benchmarks.hpp"

#include <cblas.h>
#include <omp.h>
#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <limits>

namespace ped::bench {

std::int64_t minor_page_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<std::int64_t>(usage.ru_minflt);
}
namespace {

bool g_memory_run = false;
std::int64_t g_memory_run_peak = 0;
std::size_t g_progress_total = 0;
std::size_t g_last_announced = std::numeric_limits<std::size_t>::max();
std::size_t g_announced_count = 0;
std::vector<std::string> g_names;
std::string g_current_name;  // the benchmark whose function ran last
// MemoryManager results per benchmark name, one per repetition in order (a deque: stable addresses).
std::map<std::string, std::deque<benchmark::MemoryManager::Result>> g_memory_results;

}  // namespace

RunSettings& settings() {
  static RunSettings instance;
  return instance;
}

void set_all_threads(int threads) {
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  set_libtorch_threads(threads);
}

void CallPeakMemoryManager::Start() {
  g_memory_run = true;
  g_memory_run_peak = 0;
}

void CallPeakMemoryManager::Stop(Result* result) {
  g_memory_run = false;
  result->max_bytes_used = g_memory_run_peak;
  g_memory_results[g_current_name].push_back(*result);
}

std::optional<std::int64_t> memory_peak_of_earlier_repetition() {
  const auto found = g_memory_results.find(g_current_name);
  if (found == g_memory_results.end() || found->second.empty()) return std::nullopt;
  return found->second.front().max_bytes_used;
}

void MemoryJsonReporter::ReportRuns(const std::vector<Run>& runs) {
  std::vector<Run> patched = runs;
  for (Run& run : patched) {
    if (run.run_type == Run::RT_Aggregate && run.aggregate_name == "cv") {
      // The coefficient of variation of a counter that is 0 in every repetition (peak_bytes of a
      // call that allocates nothing) is 0/0: written as NaN, which is not JSON. It varies by 0 %.
      for (auto& [name, counter] : run.counters) {
        if (std::isnan(counter.value)) counter.value = 0.0;
      }
    }
    if (run.memory_result == nullptr) continue;
    run.memory_result = nullptr;
    if (run.run_type != Run::RT_Iteration) continue;
    const auto found = g_memory_results.find(run.run_name.function_name);
    if (found == g_memory_results.end()) continue;
    const auto repetition = static_cast<std::size_t>(run.repetition_index);
    if (repetition < found->second.size()) run.memory_result = &found->second[repetition];
  }
  JSONReporter::ReportRuns(patched);
}

CallPeakMemoryManager& memory_manager() {
  static CallPeakMemoryManager instance;
  return instance;
}

bool memory_run_active() { return g_memory_run; }

void record_call_peak(std::int64_t bytes) { g_memory_run_peak = std::max(g_memory_run_peak, bytes); }

void set_progress_total(std::size_t total) { g_progress_total = total; }

void announce(std::size_t index, const std::string& name) {
  if (index == g_last_announced) return;
  g_last_announced = index;
  ++g_announced_count;
  if (g_progress_total > 0) {
    std::fprintf(stderr, "[%zu/%zu] %s\n", g_announced_count, g_progress_total, name.c_str());
  } else {
    std::fprintf(stderr, "[%zu] %s\n", g_announced_count, name.c_str());
  }
  std::fflush(stderr);
}

void set_flop_counters(benchmark::State& state, double flop, double useful) {
  using benchmark::Counter;
  state.counters["flop"] = Counter(flop);
  state.counters["useful_flop"] = Counter(useful);
  state.counters["FLOPS"] = Counter(flop, Counter::kIsIterationInvariantRate, Counter::kIs1000);
  state.counters["useful_FLOPS"] = Counter(useful, Counter::kIsIterationInvariantRate, Counter::kIs1000);
  set_fraction_of_ceiling(state, "gemm_gflops", settings().gemm_gflops, "fraction_of_gemm", flop);
}

void set_fraction_of_ceiling(benchmark::State& state, const char* ceiling_name, double ceiling,
                             const char* fraction_name, double amount) {
  using benchmark::Counter;
  if (!(ceiling > 0.0)) return;
  state.counters[ceiling_name] = Counter(ceiling);
  // (amount / 1e9 / ceiling) per iteration, as a rate: amount / seconds / 1e9 / ceiling = the fraction.
  state.counters[fraction_name] = Counter(amount / 1e9 / ceiling, Counter::kIsIterationInvariantRate);
}

namespace {

struct PlannedBenchmark {
  std::string name;
  std::uint64_t cost = 0;
  std::function<void(benchmark::State&)> fn;
};
std::vector<PlannedBenchmark> g_plan;

void register_now(const std::string& name, const std::function<void(benchmark::State&)>& fn) {
  const std::size_t index = g_names.size();
  g_names.push_back(name);
  auto* b = benchmark::RegisterBenchmark(name.c_str(), [index, name, fn](benchmark::State& state) {
    g_current_name = name;
    announce(index, name);
    if (memory_run_active()) {
      // A later repetition's memory run: the peak is known, skip the setup (inputs, and for a
      // backward benchmark the forward) as well as the call.
      if (const std::optional<std::int64_t> earlier = memory_peak_of_earlier_repetition()) {
        record_call_peak(*earlier);
        for (auto _ : state) {
        }
        return;
      }
    }
    // A benchmark that fails (an allocation the machine cannot give, an error from a kernel) is
    // reported as an error row; the rest of the sweep goes on.
    try {
      fn(state);
    } catch (const std::exception& error) {
      state.SkipWithError(error.what());
    }
  });
  b->UseRealTime()->Unit(benchmark::kMillisecond);
  const BenchConfig& config = settings().config;
  if (config.iterations > 0) {
    b->Iterations(config.iterations);
  } else {
    b->MinTime(config.min_time);
  }
}

}  // namespace

void register_timed(const std::string& name, std::uint64_t cost, std::function<void(benchmark::State&)> fn) {
  g_plan.push_back({name, cost, std::move(fn)});
}

std::vector<std::string> planned_names() {
  std::vector<std::string> names;
  for (const PlannedBenchmark& p : g_plan) names.push_back(p.name);
  return names;
}

std::vector<std::uint64_t> planned_costs() {
  std::vector<std::uint64_t> costs;
  for (const PlannedBenchmark& p : g_plan) costs.push_back(p.cost);
  return costs;
}

void register_planned(const std::vector<std::size_t>& indices) {
  for (std::size_t i : indices) register_now(g_plan.at(i).name, g_plan.at(i).fn);
  g_plan.clear();
}

std::vector<std::size_t> register_shard(const ShardSpec& s) {
  const std::vector<std::size_t> indices = shard_cases(planned_costs(), s);
  register_planned(indices);
  return indices;
}

void discard_plan() { g_plan.clear(); }

void plan_sweep(const BenchConfig& config) {
  if (config.gemm) register_gemm_benchmark(config);
  register_attention_benchmarks(config);
  if (config.layers) {
    register_reference_layer_benchmarks(config);
    register_libtorch_layer_benchmarks(config);
  }
}

const std::vector<std::string>& registered_names() { return g_names; }

void fill_uniform(float* data, std::size_t count, std::uint64_t seed) {
  std::uint64_t state = seed;
  for (std::size_t i = 0; i < count; ++i) {
    // splitmix64
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    data[i] = static_cast<float>(static_cast<double>(z >> 40) * 0x1.0p-23 - 1.0);  // 24 bits -> [-1, 1)
  }
}

}  // namespace ped::bench
