// The tidy CSV files reports/ reads and writes.
//
// Benchmark CSV (BENCH.csv), one row per benchmark configuration, columns by name (extra columns are
// ignored; order is free):
//   variant, pass, dtype, batch, heads, seq_len, head_dim, mask, threads,   -- the benchmark's key
//   repetitions, median_ns, min_ns, max_ns, gflops, peak_bytes, fraction_of_gemm, git_rev, host, date,
//   allocator   -- optional: files written before it existed read as an empty cell
//   heads_kv, seq_q, lengths   -- optional, the rest of the key (core/schemas.hpp): H_kv (heads unless
//               grouped-query), Nq (seq_len unless decoding, where seq_len is Nk), the lengths
//               profile of a variable-length batch (empty: every sequence seq_len long)
//   tokens_per_s, gbytes_per_s, fraction_of_copy   -- optional (nan when absent or not measured):
//               query tokens per second (real tokens, no padding), bytes of K and V read per ns,
//               and that over the in-run copy bandwidth
// `variant` also names LibTorch contenders (libtorch_sdpa, ...: schema::libtorch_prefix); `pass` is
// forward|backward|forward_backward; `allocator` bench's heap allocator setting for the row (tuned,
// default, or glibc_default for the in-run probe; core/schemas.hpp).
// A quantity that was not measured is written `nan`.
//
// Raw-samples companion (BENCH.samples.csv beside BENCH.csv), one row per repetition:
//   variant, pass, dtype, batch, heads, seq_len, head_dim, mask, threads, repetition, time_ns,
//   heads_kv, seq_q, lengths (optional, as above)
// The nine key columns match a row of BENCH.csv; time_ns is the wall time of one iteration in that
// repetition (Google Benchmark's real_time, per iteration). `report compare` tests these samples.
//
// Phases companion (BENCH.phases.csv beside BENCH.csv), where the time goes, one row per
// (benchmark, phase):
//   variant, pass, dtype, batch, heads, seq_len, head_dim, mask, threads, phase, fraction,
//   heads_kv, seq_q, lengths (optional, as above)
// phase is a phase of AttentionOptions::phases (variants/attention.hpp: score_gemm, mask, softmax,
// value_gemm, dv_gemm, dp_gemm, softmax_grad, dq_gemm, dk_gemm, dominated) or `other`; fraction is
// that phase's time summed over threads / (threads x wall time) of one timed call of the benchmark's
// pass (bench's phase_<name> counters, the median over repetitions), in [0, 1]; a benchmark's
// fractions add up to 1 (other is the rest). Only implementations that time their phases have rows;
// the file may hold none (header only).
//
// Verify CSV (from the `verify` command), one row per comparison:
//   op, variant, dtype, shape, mask, reference, quantity, max_abs_err, max_rel_err, norm_rel_err,
//   tolerance, passed, seed   (variant may be empty; passed is true|false)
#pragma once

#include <compare>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/csv.hpp"

namespace ped::reports {

// What one benchmark measures; two rows with equal keys are the same benchmark (across runs).
// B batch, H heads, H_kv key/value heads, Nq query tokens, N seq_len (the keys, Nk; also the queries
// unless Nq is given), d head_dim, T threads.
// heads_kv and seq_q are kept in one canonical form, 0 when equal to heads and seq_len (what every
// file before their columns holds), so that a plain benchmark has one key whichever file it came
// from; the readers canonicalise what they read, and the writers write the full value
// (kv_heads(), queries()).
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
  std::int64_t heads_kv = 0;  // H_kv, 0: heads (not grouped); else in [1, heads), dividing heads
  std::int64_t seq_q = 0;     // Nq, 0: seq_len; else != seq_len (decoding: Nq queries against seq_len keys)
  std::string lengths;        // the lengths profile of a variable-length batch; empty: every sequence seq_len long

  std::int64_t kv_heads() const { return heads_kv == 0 ? heads : heads_kv; }
  std::int64_t queries() const { return seq_q == 0 ? seq_len : seq_q; }
  bool grouped() const { return heads_kv != 0; }
  bool decoding() const { return seq_q != 0; }
  bool variable_length() const { return !lengths.empty(); }
  auto operator<=>(const BenchmarkKey&) const = default;
};

// Puts heads_kv and seq_q in their canonical form (0 where equal to heads, seq_len).
void canonicalize(BenchmarkKey& key);

// "attention/<variant>/<pass>/<dtype>/<mask>/B:<b>/H:<h>[/Hkv:<h_kv>][/Nq:<nq>]/N:<n>/d:<d>[/L:<lengths>]/T:<t>",
// the benchmark name scheme of gbench_json.hpp (the bracketed parts only where the key has them).
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
  std::string allocator;  // bench's allocator setting ("tuned", "default", "glibc_default"); empty when unknown
  double tokens_per_s = std::numeric_limits<double>::quiet_NaN();      // query tokens / s; nan when unknown
  double gbytes_per_s = std::numeric_limits<double>::quiet_NaN();      // bytes of K and V read / ns; nan when unknown
  double fraction_of_copy = std::numeric_limits<double>::quiet_NaN();  // gbytes_per_s / in-run copy GB/s; nan when unknown
  std::size_t line = 0;  // line in the file it was read from (0 when made in memory)
};

struct Sample {
  BenchmarkKey key;
  std::int64_t repetition = 0;
  double time_ns = 0.0;
  std::size_t line = 0;
};

struct PhaseRow {
  BenchmarkKey key;
  std::string phase;
  double fraction = 0.0;
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
// BENCH.csv -> BENCH.phases.csv (any other name: NAME -> NAME.phases.csv).
std::filesystem::path phases_path_for(const std::filesystem::path& bench_csv);

// The longest time of one iteration a file may hold: one day. No benchmark of this suite comes near
// it, and the bound keeps sums, squares and ratios of times far from overflow (a median of two
// samples of 1e308 ns would be inf).
inline constexpr double max_time_ns = 8.64e13;

// What the readers accept, and the writers refuse to write otherwise:
//   key         variant, pass, dtype, mask not empty; pass forward|backward|forward_backward;
//               batch, heads, seq_len, head_dim, threads > 0; heads_kv 0 or in [1, heads) dividing
//               heads; seq_q 0 or > 0 and != seq_len (canonical form, BenchmarkKey); lengths printable
//   text cells  no control characters (bytes below 0x20, 0x7f)
//   benchmark   repetitions >= 1; 0 < min_ns <= median_ns <= max_ns <= max_time_ns; gflops,
//               peak_bytes, fraction_of_gemm, tokens_per_s, gbytes_per_s, fraction_of_copy nan (not
//               measured) or finite and >= 0; keys unique
//   sample      repetition >= 0; 0 < time_ns <= max_time_ns; (key, repetition) unique
//   phase       phase [a-z_]+; fraction finite in [0, 1]; (key, phase) unique
//   verify      op not empty; each error nan, inf or >= 0; tolerance finite and > 0; passed equal to
//               verify_verdict(row)
// A problem found in a row: the column and what is wrong with its value.
struct FieldProblem {
  std::string column;
  std::string what;
};
std::optional<FieldProblem> find_problem(const BenchmarkKey& key);
std::optional<FieldProblem> find_problem(const BenchmarkRow& row);
std::optional<FieldProblem> find_problem(const Sample& sample);
std::optional<FieldProblem> find_problem(const PhaseRow& row);
std::optional<FieldProblem> find_problem(const VerifyRow& row);

// The verdict the numbers of a verify row give: every error finite and norm_rel_err <= tolerance
// (a NaN, an Inf, written also for a shape mismatch, is a failure whatever the tolerance).
bool verify_verdict(const VerifyRow& row);

// Readers throw InputError("FILE:LINE: ...") on a missing file or column, a non-numeric cell, a
// ragged row, an empty file, a NUL byte, a file without data rows, a row that breaks the rules above
// or a key that appears twice. The parse_ functions read `text`, named `source` in messages.
std::vector<BenchmarkRow> read_benchmark_csv(const std::filesystem::path& file);
std::vector<Sample> read_samples_csv(const std::filesystem::path& file);
std::vector<VerifyRow> read_verify_csv(const std::filesystem::path& file);
// A phases file may hold no data rows (header only): none of its benchmarks timed phases.
std::vector<PhaseRow> read_phases_csv(const std::filesystem::path& file);
std::vector<PhaseRow> parse_phases_csv(std::string_view text, const std::filesystem::path& source);
std::vector<BenchmarkRow> parse_benchmark_csv(std::string_view text, const std::filesystem::path& source);
std::vector<Sample> parse_samples_csv(std::string_view text, const std::filesystem::path& source);
std::vector<VerifyRow> parse_verify_csv(std::string_view text, const std::filesystem::path& source);

// Throw std::invalid_argument naming the row when a row breaks the rules above (its reader would
// refuse the file).
std::string format_benchmark_csv(const std::vector<BenchmarkRow>& rows);
std::string format_samples_csv(const std::vector<Sample>& samples);
std::string format_phases_csv(const std::vector<PhaseRow>& rows);

}  // namespace ped::reports
