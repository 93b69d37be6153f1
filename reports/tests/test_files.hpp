// Helpers for tests that need files: a scratch directory and whole-file read/write, and running the
// `report` executable (its path is PED_REPORT_EXECUTABLE, defined for reports/tests).
#pragma once

#include "core/atomic_file.hpp"
#include "reports/gbench_json.hpp"
#include "core/process.hpp"

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace ped::reports::testing {

inline void write_text(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary);
  out << text;
}

inline std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::size_t file_count(const std::filesystem::path& dir) {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++count;
  return count;
}

// Samples of three benchmarks (flash at N = 1024, 2048, naive at N = 1024), each time
// base_ns(N) * slowdown * exp(0.02 z), z standard normal from `seed`, `repetitions` per benchmark.
inline std::vector<MeasuredSample> synthetic_samples(double slowdown, int repetitions, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> z(0.0, 1.0);
  const BenchmarkKey keys[] = {{"flash", "forward", "float", 1, 8, 1024, 64, "causal", 2},
                               {"flash", "forward", "float", 1, 8, 2048, 64, "causal", 2},
                               {"naive", "forward", "float", 1, 8, 1024, 64, "causal", 2}};
  std::vector<MeasuredSample> samples;
  for (const BenchmarkKey& key : keys) {
    const double base_ns = 3.0 * static_cast<double>(key.seq_len * key.seq_len);
    for (int r = 0; r < repetitions; ++r) {
      MeasuredSample s;
      s.sample.key = key;
      s.sample.repetition = r;
      s.sample.time_ns = base_ns * slowdown * std::exp(0.02 * z(rng));
      samples.push_back(s);
    }
  }
  return samples;
}

// Writes DIR/NAME.csv and DIR/NAME.samples.csv from synthetic_samples; returns the CSV's path.
inline std::filesystem::path write_synthetic_run(const std::filesystem::path& dir, const std::string& name,
                                                 double slowdown, int repetitions, unsigned seed) {
  const TidyBenchmarks tidy = tidy_benchmarks(synthetic_samples(slowdown, repetitions, seed), {"host", "date", "rev"});
  const std::filesystem::path csv = dir / (name + ".csv");
  write_file_atomically(csv, format_benchmark_csv(tidy.rows));
  write_file_atomically(samples_path_for(csv), format_samples_csv(tidy.samples));
  return csv;
}

#ifdef PED_REPORT_EXECUTABLE
inline std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs the `report` executable (PED_REPORT_EXECUTABLE) with ARGS, with stdout and stderr captured in `scratch`.
inline CommandResult run_report(const std::filesystem::path& scratch, const std::vector<std::string>& args) {
  std::string command = shell_quote(PED_REPORT_EXECUTABLE);
  for (const std::string& arg : args) {
    command += ' ';  // appended apart: GCC 12 warns falsely (-Wrestrict) on " " + std::string
    command += shell_quote(arg);
  }
  const std::filesystem::path out = scratch / "report.stdout";
  const std::filesystem::path err = scratch / "report.stderr";
  command += " > " + shell_quote(out.string()) + " 2> " + shell_quote(err.string());
  const int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_text(out);
  result.err = read_text(err);
  return result;
}
#endif

}  // namespace ped::reports::testing
