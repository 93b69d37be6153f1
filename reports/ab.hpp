// `report ab`: A/B benchmark of two git revisions on this machine.
//
// Each revision is checked out with `git worktree add --detach` into its own source tree and built
// in its own build tree (cmake configure, then `cmake --build --target ped_bench`; the executable is
// `bench`). The two benchmark executables then run interleaved, A B A B ..., one Google Benchmark
// repetition per run:
//   bench --benchmark_repetitions=1 --benchmark_format=json --benchmark_out=RUN.json
//         --benchmark_out_format=json [--benchmark_filter=REGEX]
// so slow drifts of the machine (thermal state, other load) hit both sides alike instead of biasing
// whichever ran second. Every run's JSON becomes samples (gbench_json.hpp); the two sample sets are
// compared as by `report compare`.
#pragma once

#include "reports/compare.hpp"
#include "reports/gbench_json.hpp"

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace ped::reports {

struct AbOptions {
  std::string rev_a;
  std::string rev_b;
  int repetitions = 9;         // runs of each side
  std::string filter;          // --benchmark_filter regex; empty runs everything
  std::filesystem::path repository = ".";
  // Where the source and build trees go. Given: kept (named by side and commit), so a rerun only
  // rebuilds what changed. Not given: a temp directory, removed with its worktrees at the end.
  std::optional<std::filesystem::path> build_dir;
  std::string bench_target = "ped_bench";
  std::string bench_executable = "bench";
  std::vector<std::string> cmake_args = {"-DCMAKE_BUILD_TYPE=Release", "-DPED_BUILD_VERIFY=OFF"};
  int jobs = 2;
  // Given: A.csv, A.samples.csv, B.csv, B.samples.csv and comparison.csv are written there.
  std::optional<std::filesystem::path> out_dir;
  CompareOptions compare;
};

struct AbResult {
  std::string commit_a;
  std::string commit_b;
  TidyBenchmarks a;
  TidyBenchmarks b;
  std::vector<Comparison> comparisons;
};

// Throws InputError for a revision git does not know or a bad option, std::runtime_error when a
// build or a benchmark run fails (naming the command and its log). Progress goes to `log`.
AbResult run_ab(const AbOptions& options, std::ostream& log);

}  // namespace ped::reports
