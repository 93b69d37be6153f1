// The columns of every CSV file the project writes, in order: one owner per file schema. Writers
// print header_line(...) of these and readers look the same names up, so a column cannot be added
// on one side only. What each column holds is described where the file is documented
// (reports/csv_io.hpp, reports/compare.hpp, README.md).
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace ped::schema {

// verify.csv (verify --out): one row per comparison. `detail` is the reason of a failed check
// (one printable line); readers need not read it.
inline constexpr std::array<std::string_view, 14> verify_columns = {
    "op",          "variant",     "dtype",        "shape",     "mask",   "reference", "quantity",
    "max_abs_err", "max_rel_err", "norm_rel_err", "tolerance", "passed", "seed",      "detail"};

// The nine columns that identify a benchmark, first in each benchmark file below.
inline constexpr std::array<std::string_view, 9> benchmark_key_columns = {
    "variant", "pass", "dtype", "batch", "heads", "seq_len", "head_dim", "mask", "threads"};

// BENCH.csv (report convert): one row per benchmark configuration. `allocator`, the heap allocator
// setting the row ran under (bench's --allocator: tuned or default; glibc_default for the in-run
// probe), came last and later: readers take files without it.
inline constexpr std::array<std::string_view, 20> benchmark_columns = {
    "variant",     "pass",      "dtype",  "batch",  "heads",  "seq_len",    "head_dim",
    "mask",        "threads",   "repetitions", "median_ns", "min_ns", "max_ns", "gflops",
    "peak_bytes",  "fraction_of_gemm", "git_rev", "host", "date", "allocator"};

// Variant names in the benchmark files: LibTorch's contenders start with libtorch_prefix; the
// in-run allocator probe (bench's libtorch_sdpa run under glibc's default malloc settings in a tuned
// run) is the LibTorch contender's name followed by glibc_default_suffix, its allocator cell
// glibc_default_allocator.
inline constexpr std::string_view libtorch_prefix = "libtorch_";
inline constexpr std::string_view glibc_default_suffix = "_glibc_default";
inline constexpr std::string_view glibc_default_allocator = "glibc_default";

// BENCH.samples.csv (report convert): one row per repetition of a benchmark.
inline constexpr std::array<std::string_view, 11> samples_columns = {
    "variant", "pass", "dtype", "batch", "heads", "seq_len", "head_dim", "mask", "threads", "repetition", "time_ns"};

// BENCH.phases.csv (report convert): where the time goes, one row per (benchmark, phase).
inline constexpr std::array<std::string_view, 11> phases_columns = {
    "variant", "pass", "dtype", "batch", "heads", "seq_len", "head_dim", "mask", "threads", "phase", "fraction"};

// report compare --csv: one row per benchmark of either run.
inline constexpr std::array<std::string_view, 18> comparison_columns = {
    "variant",       "pass",          "dtype",          "batch",         "heads",       "seq_len",
    "head_dim",      "mask",          "threads",        "base_median_ns", "new_median_ns", "ratio",
    "p_value",       "u_test_method", "base_samples",   "new_samples",   "verdict",     "note"};

// loss.csv (train): one row per evaluation.
inline constexpr std::array<std::string_view, 6> loss_columns = {"step",      "train_loss", "val_loss",
                                                                 "lr",        "grad_norm",  "seconds"};

// "a,b,c\n": the header line of a file with these columns.
template <std::size_t N>
std::string header_line(const std::array<std::string_view, N>& columns) {
  std::string line;
  for (std::size_t i = 0; i < N; ++i) {
    if (i > 0) line += ',';
    line += columns[i];
  }
  line += '\n';
  return line;
}

// The first M columns equal `prefix` (a key shared by several files).
template <std::size_t N, std::size_t M>
constexpr bool starts_with(const std::array<std::string_view, N>& columns, const std::array<std::string_view, M>& prefix) {
  if (M > N) return false;
  for (std::size_t i = 0; i < M; ++i) {
    if (columns[i] != prefix[i]) return false;
  }
  return true;
}
static_assert(starts_with(benchmark_columns, benchmark_key_columns));
static_assert(starts_with(samples_columns, benchmark_key_columns));
static_assert(starts_with(comparison_columns, benchmark_key_columns));
static_assert(starts_with(phases_columns, benchmark_key_columns));

}  // namespace ped::schema
