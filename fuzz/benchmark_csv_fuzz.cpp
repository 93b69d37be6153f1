// Fuzz target of the benchmark CSV reader (reports::parse_benchmark_csv): an accepted file keeps the
// format's rules and survives a write and a read unchanged.
#include "fuzz/fuzz_target.hpp"
#include "fuzz/reports_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view target = "benchmark_csv";
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<ped::reports::BenchmarkRow> rows;
  if (ped::fuzz::read_or_refuse(target, "input.csv", [&] { rows = ped::reports::parse_benchmark_csv(text, "input.csv"); })) {
    ped::fuzz::check_benchmark_rows(target, rows);
    ped::fuzz::check_row_count(target, text, rows.size());
    ped::fuzz::check_benchmark_round_trip(target, rows);
  }
  return 0;
}
