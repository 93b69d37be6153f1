// The columns of every CSV file the project writes, in order: one owner per file schema. Writers
// print header_line(...) of these and readers look the same names up, so a column cannot be added
// on one side only. What each column holds is described where the file is documented
// (reports/csv_io.hpp, reports/compare.hpp, README.md).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ped::schema {

// verify.csv (verify --out): one row per comparison. `detail` is the reason of a failed check
// (one printable line); readers need not read it.
inline constexpr std::array<std::string_view, 14> verify_columns = {
    "op",          "variant",     "dtype",        "shape",     "mask",   "reference", "quantity",
    "max_abs_err", "max_rel_err", "norm_rel_err", "tolerance", "passed", "seed",      "detail"};

// One case of a verify sweep (one problem: every row of the CSV with these op, variant, shape, mask
// and seed), as its shard manifest's case list and report merge name it (core/shard.hpp), e.g.
// "sdpa | flash | B=1 H=2 N=8 d=4 | causal | seed=1".
inline std::string verify_case_key(std::string_view op, std::string_view variant, std::string_view shape,
                                   std::string_view mask, std::uint64_t seed) {
  std::string key;
  for (std::string_view part : {op, variant, shape, mask}) {
    key += part;
    key += " | ";
  }
  return key + "seed=" + std::to_string(seed);
}

// The nine columns that identify a benchmark, first in each benchmark file below.
inline constexpr std::array<std::string_view, 9> benchmark_key_columns = {
    "variant", "pass", "dtype", "batch", "heads", "seq_len", "head_dim", "mask", "threads"};

// Three more columns of the key, added later and so last in each benchmark file (readers take files
// without them, whose benchmarks are then plain multi-head attention over whole sequences):
// heads_kv (H_kv, the key/value heads: heads unless grouped-query), seq_q (Nq, the query tokens:
// seq_len unless a decoding case, whose seq_len is Nk, the keys) and lengths (empty when every
// sequence is seq_len long, else the lengths profile of a variable-length batch, e.g.
// "mixed(seed=20250101)": bench's bench_config.hpp draws the lengths from it).
inline constexpr std::array<std::string_view, 3> benchmark_extra_key_columns = {"heads_kv", "seq_q", "lengths"};

// BENCH.csv (report convert): one row per benchmark configuration. `allocator`, the heap allocator
// setting the row ran under (bench's --allocator: tuned or default; glibc_default for the in-run
// probe), came later: readers take files without it. So did the extra key columns above and the
// rates after them: tokens_per_s (query tokens per second, real tokens only), gbytes_per_s (bytes of
// K and V read per ns) and fraction_of_copy (gbytes_per_s over the in-run copy bandwidth).
inline constexpr std::array<std::string_view, 26> benchmark_columns = {
    "variant",     "pass",      "dtype",  "batch",  "heads",  "seq_len",    "head_dim",
    "mask",        "threads",   "repetitions", "median_ns", "min_ns", "max_ns", "gflops",
    "peak_bytes",  "fraction_of_gemm", "git_rev", "host", "date", "allocator",
    "heads_kv",    "seq_q",     "lengths", "tokens_per_s", "gbytes_per_s", "fraction_of_copy"};

// Variant names in the benchmark files: LibTorch's contenders start with libtorch_prefix; the
// in-run allocator probe (bench's libtorch_sdpa run under glibc's default malloc settings in a tuned
// run) is the LibTorch contender's name followed by glibc_default_suffix, its allocator cell
// glibc_default_allocator.
inline constexpr std::string_view libtorch_prefix = "libtorch_";
inline constexpr std::string_view glibc_default_suffix = "_glibc_default";
inline constexpr std::string_view glibc_default_allocator = "glibc_default";

// BENCH.samples.csv (report convert): one row per repetition of a benchmark.
inline constexpr std::array<std::string_view, 14> samples_columns = {
    "variant", "pass",    "dtype",      "batch",   "heads",    "seq_len", "head_dim",
    "mask",    "threads", "repetition", "time_ns", "heads_kv", "seq_q",   "lengths"};

// BENCH.phases.csv (report convert): where the time goes, one row per (benchmark, phase).
inline constexpr std::array<std::string_view, 14> phases_columns = {
    "variant", "pass",    "dtype", "batch",    "heads",    "seq_len", "head_dim",
    "mask",    "threads", "phase", "fraction", "heads_kv", "seq_q",   "lengths"};

// report compare --csv: one row per benchmark of either run.
inline constexpr std::array<std::string_view, 21> comparison_columns = {
    "variant",       "pass",          "dtype",          "batch",         "heads",       "seq_len",
    "head_dim",      "mask",          "threads",        "base_median_ns", "new_median_ns", "ratio",
    "p_value",       "u_test_method", "base_samples",   "new_samples",   "verdict",     "note",
    "heads_kv",      "seq_q",         "lengths"};

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

// The extra key columns are the last three of each benchmark file.
template <std::size_t N>
constexpr bool ends_with_extra_key(const std::array<std::string_view, N>& columns, std::size_t offset_from_end) {
  if (N < offset_from_end + 3) return false;
  for (std::size_t i = 0; i < 3; ++i) {
    if (columns[N - offset_from_end - 3 + i] != benchmark_extra_key_columns[i]) return false;
  }
  return true;
}
static_assert(ends_with_extra_key(samples_columns, 0));
static_assert(ends_with_extra_key(phases_columns, 0));
static_assert(ends_with_extra_key(comparison_columns, 0));
static_assert(ends_with_extra_key(benchmark_columns, 3));

}  // namespace ped::schema
