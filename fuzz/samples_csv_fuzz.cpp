// Fuzz target of the raw-samples CSV reader (reports::parse_samples_csv): an accepted file keeps the
// format's rules (each repetition once) and survives a write and a read unchanged.
#include "fuzz/fuzz_target.hpp"
#include "fuzz/reports_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view target = "samples_csv";
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<ped::reports::Sample> samples;
  if (ped::fuzz::read_or_refuse(target, "input.samples.csv",
                                [&] { samples = ped::reports::parse_samples_csv(text, "input.samples.csv"); })) {
    ped::fuzz::check_samples(target, samples);
    ped::fuzz::check_row_count(target, text, samples.size());
    ped::fuzz::check_samples_round_trip(target, samples);
  }
  return 0;
}
