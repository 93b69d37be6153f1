// `report summarize`: a benchmark CSV (and optionally a verify CSV) -> summary.md, fits.csv, plots.
// When BENCH.phases.csv lies beside the benchmark CSV, summary.md has a "Where the time goes" section.
//
// Benchmarks are grouped into series: same pass, dtype, mask, head_dim, batch, heads, threads,
// heads_kv, seq_q and lengths profile; within a series each variant is a curve over N = seq_len (the
// keys Nk of a decoding series, whose Nq is fixed).
//
// Besides the tables of every series, summary.md has a section per feature case bench runs
// (bench/bench_config.hpp): "Grouped-query attention" (rows with H_kv < H, the time also relative
// to the same variant's H_kv = H row of the run), "Variable-length batch" (rows with a lengths
// profile: query tokens per second and GFLOP/s of the real pairs) and "Decoding" (rows with
// Nq != N: query tokens per second, bytes of K and V read per second, the fraction of the in-run
// copy bandwidth and the time exponent against Nk), each with the speed-up vs the fastest LibTorch
// contender of the same key.
//
// fits.csv, one row per fit or crossing (columns: kind, pass, dtype, mask, head_dim, batch, heads,
// threads, variant, other_variant, quantity, slope, intercept, r_squared, points, n_min, n_max,
// crossover_n, heads_kv, seq_q, lengths; the last three as in BENCH.csv):
//   kind=fit        log-log least squares of `quantity` (time_ns: median time; peak_bytes) against N
//                   for one variant of one series (fits.hpp), when >= 2 distinct N were measured;
//   kind=crossover  N where `variant` overtakes `other_variant` in median time (faster above the
//                   crossing, slower below), interpolated on the log-log lines between measured N.
// Cells that do not apply hold nan or are empty.
#pragma once

#include "reports/csv_io.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ped::reports {

// The series a benchmark belongs to: its key without variant and seq_len.
struct SeriesKey {
  std::string pass;
  std::string dtype;
  std::string mask;
  std::int64_t head_dim = 0;
  std::int64_t batch = 0;
  std::int64_t heads = 0;
  std::int64_t threads = 0;
  std::int64_t heads_kv = 0;  // BenchmarkKey's canonical form: 0 = heads
  std::int64_t seq_q = 0;     // 0 = seq_len
  std::string lengths;
  auto operator<=>(const SeriesKey&) const = default;
};
SeriesKey series_of(const BenchmarkKey& key);
// "forward, float, causal, d=64, B=1, H=8, T=4", then ", H_kv=2", ", Nq=1", ", lengths L" where the
// series has them
std::string describe(const SeriesKey& series);

struct FitRow {
  std::string kind;  // "fit" or "crossover"
  SeriesKey series;
  std::string variant;
  std::string other_variant;
  std::string quantity;  // "time_ns" or "peak_bytes"
  double slope = 0.0;
  double intercept = 0.0;
  double r_squared = 0.0;
  std::size_t points = 0;
  double n_min = 0.0;
  double n_max = 0.0;
  double crossover_n = 0.0;
};

std::vector<FitRow> complexity_fits(const std::vector<BenchmarkRow>& rows);
std::string format_fits_csv(const std::vector<FitRow>& fits);

// "## Where the time goes": per series, a table of each variant and N with the percentage of each
// phase (BENCH.phases.csv, csv_io.hpp); phases at zero in every row of a series are left out. Empty
// text when there are no rows.
std::string time_split_section(const std::vector<PhaseRow>& phases);

// The feature sections ("## Grouped-query attention", "## Variable-length batch", "## Decoding");
// each only when the rows hold such benchmarks, so empty text for a file without any. `fits` (of
// complexity_fits) give the decoding section its time exponent against Nk.
std::string feature_sections(const std::vector<BenchmarkRow>& rows, const std::vector<FitRow>& fits);

struct SummaryOptions {
  std::filesystem::path bench_csv;
  std::optional<std::filesystem::path> verify_csv;
  std::filesystem::path out_dir;
  std::string gnuplot = "gnuplot";  // program name or path
  std::string plot_format = "png";  // png (pngcairo) or svg
};

struct SummaryResult {
  std::vector<std::filesystem::path> written;  // every file now in out_dir
  std::string plot_note;                       // empty when plots were made; otherwise why not
};

// Reads the inputs (InputError on bad input, before out_dir is created or touched), renders the plots
// into temp files, then moves summary.md, fits.csv and the plots into out_dir together.
SummaryResult write_summary(const SummaryOptions& options);

}  // namespace ped::reports
