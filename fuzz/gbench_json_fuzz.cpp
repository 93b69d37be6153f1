// Fuzz target of the Google Benchmark JSON reader and of what `report convert` does with it:
// parse_gbench_json, tidy_benchmarks, then the CSV writers. What the reader accepts keeps its rules,
// and the CSV files made from it are ones the CSV readers accept, with the same values.
#include "fuzz/fuzz_target.hpp"
#include "fuzz/reports_checks.hpp"

#include <map>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace reports = ped::reports;
  constexpr std::string_view target = "gbench_json";
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  reports::GbenchRun run;
  if (!ped::fuzz::read_or_refuse(target, "run.json", [&] { run = reports::parse_gbench_json(text, "run.json"); })) return 0;
  ped::fuzz::check_gbench_run(target, run);
  if (run.samples.empty()) return 0;  // convert refuses that itself

  reports::TidyBenchmarks tidy;
  // InputError here names a benchmark rather than the file (convert prefixes nothing): allow "benchmark".
  if (!ped::fuzz::read_or_refuse(target, "benchmark ", [&] { tidy = reports::tidy_benchmarks(run.samples, run.context); })) {
    return 0;
  }
  ped::fuzz::check_benchmark_rows(target, tidy.rows);
  ped::fuzz::check_samples(target, tidy.samples);
  std::map<reports::BenchmarkKey, std::int64_t> count;
  for (const reports::Sample& sample : tidy.samples) ++count[sample.key];
  for (const reports::BenchmarkRow& row : tidy.rows) {
    if (count[row.key] != row.repetitions) ped::fuzz::fail(target, "a row's repetitions differ from its samples");
  }
  ped::fuzz::check_benchmark_round_trip(target, tidy.rows);
  ped::fuzz::check_samples_round_trip(target, tidy.samples);
  return 0;
}
