// Fuzz target of the verify CSV reader (reports::parse_verify_csv): an accepted row's passed agrees
// with its numbers, and its tolerance and errors are in range.
#include "fuzz/fuzz_target.hpp"
#include "fuzz/reports_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view target = "verify_csv";
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<ped::reports::VerifyRow> rows;
  if (ped::fuzz::read_or_refuse(target, "verify.csv", [&] { rows = ped::reports::parse_verify_csv(text, "verify.csv"); })) {
    ped::fuzz::check_verify_rows(target, rows);
    ped::fuzz::check_row_count(target, text, rows.size());
  }
  return 0;
}
