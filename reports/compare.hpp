// Regression gate: compares a new benchmark run against a baseline, benchmark by benchmark.
//
// Benchmarks are matched on their key (variant, pass, dtype, batch, heads, seq_len, head_dim, mask,
// threads). For each pair: ratio = median(new) / median(base) (> 1 is slower) and the two-sided
// Mann-Whitney U test of the raw samples (statistics.hpp). Verdict, as Google Benchmark's
// tools/compare.py reads its U test:
//   regressed  ratio > 1 + threshold and p < alpha
//   improved   ratio < 1 - threshold and p < alpha
//   unchanged  otherwise
//   not gated  fewer than min_repetitions samples on either side (the test cannot reach p < 0.05
//              reliably with so few: the smallest exact two-sided p for 4 vs 4 is 0.029), or no
//              raw samples at all; the ratio is still shown
// Benchmarks present on one side only are listed, not gated. A gate that left benchmarks unjudged
// has not checked them: gate_coverage says so, and `report compare` fails on it unless told not to.
#pragma once

#include "reports/csv_io.hpp"
#include "reports/statistics.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ped::reports {

struct CompareOptions {
  double threshold = 0.05;            // relative change of the median that matters
  double alpha = 0.05;                // significance level of the U test
  std::size_t min_repetitions = 9;    // samples needed on each side to gate, as compare.py
};

// A run read back from disk: the benchmark CSV and its raw samples (empty when there is no
// companion file; samples_source is then empty too).
struct BenchmarkSet {
  std::filesystem::path source;
  std::vector<BenchmarkRow> rows;
  std::filesystem::path samples_source;
  std::vector<Sample> samples;
};

// Reads BENCH.csv and, when it exists, samples_path_for(BENCH.csv) (or `samples_file` if given).
// Throws InputError when a sample's key has no row in BENCH.csv, or when a row's repetitions differ
// from the number of its samples.
BenchmarkSet read_benchmark_set(const std::filesystem::path& bench_csv,
                                const std::optional<std::filesystem::path>& samples_file = std::nullopt);

enum class Verdict { improved, regressed, unchanged, not_gated, only_in_base, only_in_new };
const char* to_string(Verdict verdict);

struct Comparison {
  BenchmarkKey key;
  std::size_t base_samples = 0;
  std::size_t new_samples = 0;
  double base_median_ns = 0.0;  // median of the samples, or the CSV's median_ns without samples
  double new_median_ns = 0.0;
  double ratio = 0.0;           // new / base
  std::optional<MannWhitneyResult> test;  // when both sides have >= 2 samples
  Verdict verdict = Verdict::unchanged;
  std::string note;             // why a row is not gated
};

// Comparisons sorted by key. Throws std::invalid_argument on a non-positive threshold or alpha
// outside (0, 1).
std::vector<Comparison> compare_benchmarks(const BenchmarkSet& base, const BenchmarkSet& next,
                                           const CompareOptions& options);
// Same, on samples alone (the A/B runner): medians from the samples.
std::vector<Comparison> compare_samples(const std::vector<Sample>& base, const std::vector<Sample>& next,
                                        const CompareOptions& options);

bool has_regression(const std::vector<Comparison>& comparisons);

// How much of a comparison the gate judged: benchmarks with a verdict (improved, regressed,
// unchanged), matched but not gated, and present on one side only.
struct GateCoverage {
  std::size_t gated = 0;
  std::size_t not_gated = 0;
  std::size_t unmatched = 0;
  const Comparison* first_not_gated = nullptr;
  // True when the gate judged nothing, or left a matched benchmark unjudged.
  bool incomplete() const { return gated == 0 || not_gated > 0; }
};
GateCoverage gate_coverage(const std::vector<Comparison>& comparisons);
// One line: how many benchmarks were not gated and why the first was not, or "" when complete.
std::string describe_incomplete_gate(const GateCoverage& coverage);

// A fixed-width table, one line per benchmark, and a count per verdict.
std::string format_comparison_table(const std::vector<Comparison>& comparisons, const CompareOptions& options);

// The comparisons as CSV: the key columns, then base_median_ns, new_median_ns, ratio, p_value,
// u_test_method, base_samples, new_samples, verdict, note.
std::string format_comparison_csv(const std::vector<Comparison>& comparisons);

}  // namespace ped::reports
