// bench: attention variants and LibTorch across sequence lengths, reference layers, and the
// in-run SGEMM ceiling, as Google Benchmark suites. See bench_config.hpp for names and options.
#include "bench/allocator.hpp"
#include "bench/attention_benchmarks.hpp"
#include "bench/bandwidth_ceiling.hpp"
#include "bench/bench_config.hpp"
#include "bench/benchmark_flags.hpp"
#include "bench/gemm_ceiling.hpp"
#include "bench/harness.hpp"
#include "bench/layer_benchmarks.hpp"
#include "bench/libtorch_benchmarks.hpp"
#include "bench/memory_accounting.hpp"
#include "bench/plugin_trial.hpp"
#include "core/atomic_file.hpp"
#include "core/provenance.hpp"
#include "core/shard.hpp"
#include "plugin_host/plugin_loader.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <regex>
#include <unistd.h>
#include <string>
#include <utility>
#include <vector>

namespace {

std::string flag_value(int argc, char** argv, const std::string& flag) {
  std::string value;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.starts_with(flag + "=")) value = arg.substr(flag.size() + 1);
  }
  return value;
}

// How many registered benchmarks --benchmark_filter selects (as Google Benchmark matches it: a
// regex search, a leading '-' negates), for the "[k/n]" progress lines.
std::size_t selected_count(const std::string& filter) {
  const auto& names = ped::bench::registered_names();
  if (filter.empty() || filter == "all" || filter == ".") return names.size();
  try {
    const bool negate = filter.front() == '-';
    const std::regex pattern(negate ? filter.substr(1) : filter, std::regex::extended);
    std::size_t count = 0;
    for (const std::string& name : names) count += std::regex_search(name, pattern) != negate ? 1 : 0;
    return count;
  } catch (const std::regex_error&) {
    return 0;  // Google Benchmark reports the bad filter itself
  }
}

// The run's context entries, as given to Google Benchmark.
std::vector<std::pair<std::string, std::string>> g_context;

void add_context(const std::string& key, const std::string& value) {
  benchmark::AddCustomContext(key, value);
  g_context.emplace_back(key, value);
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Google Benchmark 1.7.1 writes nothing into --benchmark_out when no benchmark is registered
// ("Failed to match any benchmarks"). A shard without a case (N above the sweep's case count) still
// leaves its JSON: the context (date, host_name, executable and our entries, the manifest among them)
// and no benchmarks, so that report merge finds every shard of the sweep.
void write_empty_shard_json(const std::string& path, const char* executable) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  char date[64] = {};
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S%z", &local);
  std::string json = "{\n  \"context\": {\n";
  json += "    \"date\": " + json_string(date) + ",\n";
  json += "    \"host_name\": " + json_string(host) + ",\n";
  json += "    \"executable\": " + json_string(executable);
  for (const auto& [key, value] : g_context) json += ",\n    " + json_string(key) + ": " + json_string(value);
  json += "\n  },\n  \"benchmarks\": [\n  ]\n}\n";
  ped::write_file_atomically(path, json);
}

std::string number(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

}  // namespace

// libgomp reads OMP_WAIT_POLICY when it loads, before main: to default it to passive the process
// sets it and starts itself again (once). An explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT is kept.
// Why passive: on a shared or oversubscribed machine libgomp's spin-waiting lets one descheduled
// thread stall every barrier (two-thread runs measured 4-20x slower on a busy 2-core host, for
// our kernels and LibTorch alike); sleeping waiters cost microseconds per parallel region.
void default_to_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  if (std::getenv("PED_BENCH_REEXECUTED") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "passive", 1);
  ::setenv("PED_BENCH_REEXECUTED", "1", 1);
  ::execv("/proc/self/exe", argv);
  // execv failed: carry on with libgomp's default policy (the context records it as unset).
  ::unsetenv("OMP_WAIT_POLICY");
}

int main(int argc, char** argv) {
  using namespace ped::bench;
  default_to_passive_openmp(argv);
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::printf("%s", usage().c_str());
      return 0;
    }
  }
  try {
    settings().config = parse_options(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return 2;
  }
  if (const std::string error = benchmark_flag_error(std::vector<std::string>(argv + 1, argv + argc), "bench");
      !error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  // --benchmark_repetitions (checked above) wins over --repetitions: the cost model and the
  // manifest's settings count the repetitions that run.
  if (const std::string r = flag_value(argc, argv, "--benchmark_repetitions"); !r.empty()) {
    settings().config.repetitions = std::stoi(r);
  }
  const BenchConfig& config = settings().config;
  if (config.list_cases) {
    // The whole sweep with each case's shard under --shard's N and its cost; nothing measured
    // (plugins are loaded by parse_options, so their cases are listed, but not tried).
    for (int i = 1; i < argc; ++i) {
      if (!std::string(argv[i]).starts_with("--benchmark_")) {
        std::fprintf(stderr, "bench: --list-cases: unexpected argument '%s'\n", argv[i]);
        return 2;
      }
    }
    plan_sweep(config);
    const std::vector<std::string> keys = planned_names();
    const std::vector<std::uint64_t> costs = planned_costs();
    discard_plan();
    std::printf("%s", ped::list_cases_table(keys, costs, config.shard.count).c_str());
    return 0;
  }
  // The heap allocator setting, for every contender alike (allocator.hpp), before any benchmark.
  try {
    apply_allocator(config.allocator);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench: %s\n", error.what());
    return 1;
  }
  if (config.dry_run) {
    // The attention sweep as it would run: each case, its memory estimate, and what the budget skips.
    std::size_t skipped = 0;
    for (const AttentionCase& c : attention_cases(config)) {
      const std::int64_t estimate = estimated_bytes(c);
      const auto why = over_budget(estimate, config.memory_budget_gib);
      skipped += why ? 1 : 0;
      std::printf("%s  %.3f GiB%s%s\n", c.name().c_str(), static_cast<double>(estimate) / (1 << 30),
                  why ? "  SKIPPED: " : "", why ? why->c_str() : "");
    }
    std::printf("%zu attention cases, %zu over the %.3g GiB budget\n", attention_cases(config).size(), skipped,
                config.memory_budget_gib);
    return 0;
  }
  // Plugins first run on trial in child processes, before this process starts any thread.
  settings().failed_contenders = trial_run_plugins(config);
  for (const auto& [name, why] : settings().failed_contenders) {
    std::fprintf(stderr, "bench: %s; its benchmarks are skipped\n", why.c_str());
  }
  if (!memory::accounting_active()) {
    std::fprintf(stderr, "bench: the counting allocation functions are not in use; peak memory would be wrong\n");
    return 2;
  }

  // Our defaults for Google Benchmark's flags, placed first so the command line overrides them
  // (report ab passes --benchmark_repetitions=1).
  const std::string repetitions = "--benchmark_repetitions=" + std::to_string(config.repetitions);
  std::vector<char*> args = {argv[0], const_cast<char*>(repetitions.c_str())};
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  int args_count = static_cast<int>(args.size()) - 1;
  // Read before Initialize, which removes the flags it knows from argv.
  const std::string filter = flag_value(args_count, args.data(), "--benchmark_filter");
  const std::string format = flag_value(args_count, args.data(), "--benchmark_format");
  const std::string out = flag_value(args_count, args.data(), "--benchmark_out");
  const std::string out_format = flag_value(args_count, args.data(), "--benchmark_out_format");
  benchmark::Initialize(&args_count, args.data());
  if (benchmark::ReportUnrecognizedArguments(args_count, args.data())) return 2;

  set_all_threads(config.threads);
  std::fprintf(stderr, "bench: profile %s, %d threads, memory budget %.3g GiB; measuring the SGEMM ceiling (%lld^3)\n",
               config.profile.c_str(), config.threads, config.memory_budget_gib,
               static_cast<long long>(config.gemm_size));
  try {
    settings().gemm_gflops = measure_sgemm_gflops(config.gemm_size, config.threads);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench: measuring the SGEMM ceiling at %lld^3 failed: %s\n",
                 static_cast<long long>(config.gemm_size), error.what());
    return 1;
  }
  std::fprintf(stderr, "bench: SGEMM ceiling %.1f GFLOP/s\n", settings().gemm_gflops);
  const std::int64_t copy_bytes = config.copy_bytes > 0 ? config.copy_bytes : default_copy_bytes();
  try {
    settings().copy_gbps = measure_copy_gbps(copy_bytes, config.threads);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench: measuring the copy bandwidth ceiling (%lld bytes) failed: %s\n",
                 static_cast<long long>(copy_bytes), error.what());
    return 1;
  }
  std::fprintf(stderr, "bench: copy bandwidth ceiling %.2f GB/s (read + write, %lld MiB, %d threads)\n",
               settings().copy_gbps, static_cast<long long>(copy_bytes >> 20), config.threads);

  // The whole sweep planned, this shard's cases registered (harness.hpp: the family_index contract),
  // and the shard manifest in the context: one entry per field (core/shard.hpp), git_rev and
  // profile among them.
  plan_sweep(config);
  const std::vector<std::string> keys = planned_names();
  const std::vector<std::uint64_t> costs = planned_costs();
  ped::ShardManifest manifest = ped::make_shard_manifest(keys, costs, config.shard);
  manifest.tool = "bench";
  manifest.git_rev = ped::source_revision();
  manifest.profile = config.profile;
  manifest.settings = describe_settings(config);
  manifest.host_kind = ped::host_kind();
  const std::vector<std::size_t>& registered = manifest.case_indices;
  register_planned(registered);
  if (registered.empty()) {
    std::fprintf(stderr, "bench: shard %s of %zu cases has no case\n", ped::to_string(config.shard).c_str(),
                 keys.size());
  } else if (config.shard.count > 1) {
    std::uint64_t cost = 0;
    for (std::size_t i : registered) cost += costs[i];
    std::fprintf(stderr, "bench: shard %s: %zu of %zu cases, estimated cost %llu us\n",
                 ped::to_string(config.shard).c_str(), registered.size(), keys.size(),
                 static_cast<unsigned long long>(cost));
  }
  for (const auto& [key, value] : ped::manifest_fields(manifest)) add_context(key, value);
  add_context("threads", std::to_string(config.threads));
  add_context("memory_budget_gib", number(config.memory_budget_gib));
  add_context("gemm_gflops", number(settings().gemm_gflops));
  add_context("gemm_size", std::to_string(config.gemm_size));
  add_context("copy_gbps", number(settings().copy_gbps));
  add_context("copy_bytes", std::to_string(copy_bytes));
  add_context("copy_model", "memcpy of copy_bytes split over the threads, best of 5; GB/s = (read + write bytes) / s");
  add_context("libtorch_version", libtorch_version());
  add_context("allocator", to_string(config.allocator));
  add_context("allocator_detail", describe(config.allocator));
  const std::vector<AttentionCase> cases = attention_cases(config);
  const bool probed = std::any_of(cases.begin(), cases.end(), [](const AttentionCase& c) {
    const LibTorchContender* t = libtorch_contender(c.contender);
    return t != nullptr && t->glibc_default_probe;
  });
  add_context("allocator_probe", probed ? describe_glibc_default_probe() : "off");
  for (const ped::plugin::LoadedPlugin& p : ped::plugin::loaded_plugins()) {
    add_context("plugin_" + p.name, ped::plugin::describe(p));
  }
  // OpenMP's waiting policy (see default_to_passive_openmp), the same for every contender.
  for (const char* variable : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_PROC_BIND"}) {
    const char* value = std::getenv(variable);
    add_context(variable, value != nullptr ? value : "(unset)");
  }
  add_context("flop_model",
                              "FlashAttention: forward 4 B H N^2 d, causal x0.5, backward x2.5, forward_backward x3.5; "
                              "other masks, variable-length batches and causal decoding: useful_flop (visible pairs "
                              "within each sequence); grouped-query heads count every query head");

  set_progress_total(selected_count(filter));
  // JSON through MemoryJsonReporter (see harness.hpp: Google Benchmark 1.7.1's dangling memory
  // results); other formats never print them, and Google Benchmark makes those reporters itself.
  MemoryJsonReporter display_json, file_json;
  benchmark::BenchmarkReporter* display = format == "json" ? &display_json : nullptr;
  benchmark::BenchmarkReporter* file = !out.empty() && (out_format.empty() || out_format == "json") ? &file_json : nullptr;
  benchmark::RegisterMemoryManager(&memory_manager());
  benchmark::RunSpecifiedBenchmarks(display, file);
  if (registered.empty() && file != nullptr) {
    try {
      write_empty_shard_json(out, argv[0]);
    } catch (const std::exception& error) {
      std::fprintf(stderr, "bench: %s\n", error.what());
      return 1;
    }
  }
  benchmark::RegisterMemoryManager(nullptr);
  benchmark::Shutdown();
  return settings().failed_contenders.empty() ? 0 : 1;  // a plugin that failed its trial fails the run
}
