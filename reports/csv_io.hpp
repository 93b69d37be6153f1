// The tidy CSV files reports/ reads and writes.
//
// Benchmark CSV (BENCH.csv), one row per benchmark configuration, columns by name (extra columns are
// ignored; order is free):
//   variant, pass, dtype, batch, heads, seq_len, head_dim, mask, threads,   -- the benchmark's key
//   repetitions, median_ns, min_ns, max_ns, gflops, peak_bytes, fraction_of_gemm, git_rev, host, date
// `variant` also names LibTorch contenders (libtorch_sdpa); `pass` is forward|backward|forward_backward.
// A quantity that was not measured is written `nan`.
//
// Raw-samples companion (BENCH.samples.csv beside BENCH.csv), one row per repetition:
//   variant, pass, dtype, batch, heads, seq_len, head_dim, mask, threads, repetition, time_ns
// The nine key columns match a row of BENCH.csv; time_ns is the wall time of one iteration in that
// repetition (Google Benchmark's real_time, per iteration). `report compare` tests these samples.
//
// Verify CSV (from the `verify` command), one row per comparison:
//   op, variant, dtype, shape, mask, reference, quantity, max_abs_err, max_rel_err, norm_rel_err,
//   tolerance, passed, seed   (variant may be empty; passed is true|false)
#pragma once

#include <compare>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ped::reports {

// What one benchmark measures; two rows with equal keys are the same benchmark (across runs).
// B batch, H heads, N seq_len, d head_dim, T threads.
struct BenchmarkKey {
  std::string variant;
  std::string pass;
  std::string dtype;
  std::int64_t batch = 0;
  std::int64_t heads = 0;
  std::int64_t seq_len = 0;
  std::int64_t head_dim = 0;
  std::string mask;
  std::int64_t threads = 0;

  auto operator<=>(const BenchmarkKey&) const = default;
};

// "attention/<variant>/<pass>/<dtype>/<mask>/B:<b>/H:<h>/N:<n>/d:<d>/T:<t>", the benchmark name
// scheme of gbench_json.hpp.
std::string benchmark_name(const BenchmarkKey& key);

struct BenchmarkRow {
  BenchmarkKey key;
  std::int64_t repetitions = 0;
  double median_ns = 0.0;
  double min_ns = 0.0;
  double max_ns = 0.0;
  double gflops = 0.0;            // FLOP model / median time; nan when unknown
  double peak_bytes = 0.0;        // peak heap bytes above the start of the call; nan when unknown
  double fraction_of_gemm = 0.0;  // gflops / in-run SGEMM GFLOP/s at the same thread count; nan when unknown
  std::string git_rev;
  std::string host;
  std::string date;
  std::size_t line = 0;  // line in the file it was read from (0 when made in memory)
};

struct Sample {
  BenchmarkKey key;
  std::int64_t repetition = 0;
  double time_ns = 0.0;
  std::size_t line = 0;
};

struct VerifyRow {
  std::string op;
  std::string variant;
  std::string dtype;
  std::string shape;
  std::string mask;
  std::string reference;
  std::string quantity;
  double max_abs_err = 0.0;
  double max_rel_err = 0.0;
  double norm_rel_err = 0.0;
  double tolerance = 0.0;
  bool passed = false;
  std::string seed;
  std::size_t line = 0;
};

// BENCH.csv -> BENCH.samples.csv (any other name: NAME -> NAME.samples.csv).
std::filesystem::path samples_path_for(const std::filesystem::path& bench_csv);

// Readers throw InputError("FILE:LINE: ...") on a missing file or column, a non-numeric cell, a
// ragged row, an empty file, a file without data rows or a benchmark key that appears twice.
std::vector<BenchmarkRow> read_benchmark_csv(const std::filesystem::path& file);
std::vector<Sample> read_samples_csv(const std::filesystem::path& file);
std::vector<VerifyRow> read_verify_csv(const std::filesystem::path& file);

std::string format_benchmark_csv(const std::vector<BenchmarkRow>& rows);
std::string format_samples_csv(const std::vector<Sample>& samples);

// CSV cell text: quoted when it holds a comma, a quote or a line break ("" escapes a quote).
std::string csv_cell(const std::string& text);
// Shortest text that reads back to the same double (std::to_chars); "nan", "inf" for those.
std::string format_number(double value);

}  // namespace ped::reports
