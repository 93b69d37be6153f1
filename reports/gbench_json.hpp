// Google Benchmark JSON (--benchmark_format=json or --benchmark_out=FILE) -> our tidy CSV rows.
//
// Name scheme of the attention benchmarks (Google Benchmark's ArgNames({"B", "H", "N", "d"}) with
// ArgsProduct produces the "K:v" tail):
//   attention/<variant>/<pass>/<dtype>/<mask>/B:<batch>/H:<heads>/N:<seq_len>/d:<head_dim>[/T:<threads>]
// with, in any place among the sizes, the optional parts of the features' cases: Hkv:<heads_kv>
// (grouped-query key/value heads), Nq:<seq_q> (decoding: Nq queries against N = Nk keys) and
// L:<lengths> (the lengths profile of a variable-length batch, any text without '/'),
// followed by any of Google Benchmark's own suffixes (repeats:R, threads:T, iterations:I, min_time:S,
// min_warmup_time:S, real_time, manual_time, process_time), which are ignored. <mask> is a token
// without '/': the mask's Mask::name() (causal, none, sliding_window(left=256,right=0), ...). A size missing from the name may come as a
// counter of its long name (batch, heads, seq_len, head_dim); threads without T: is Google
// Benchmark's "threads" field. Runs whose name does not start with "attention/" (the GEMM ceiling,
// say) are listed as skipped, as are runs that reported an error (SkipWithError).
//
// Fields and counters read from each run with run_type "iteration" (aggregates are ignored: we
// compute our own statistics from the repetitions):
//   real_time, time_unit   -> time_ns of one iteration (wall time, as UseRealTime measures)
//   counter "flop"         -> FLOP per iteration; without it the FlashAttention model below
//   "max_bytes_used" (MemoryManager) or counter "peak_bytes" -> peak heap bytes
//   counter "gemm_gflops"  -> in-run SGEMM GFLOP/s at the same thread count (the ceiling)
//   counters "phase_<name>" -> where the time goes: the fraction of phase <name> (bench's
//                             attention_benchmarks.hpp), a number in [0, 1]
//   counter "query_tokens" -> real query tokens per iteration (no padding); without it B Nq, or
//                             unknown for a variable-length batch
//   counter "kv_bytes"     -> bytes of K and V one iteration reads (each element once)
//   counter "copy_gbps"    -> the in-run memory copy bandwidth, GB/s (the bandwidth ceiling)
// and from "context": host_name, date, git_rev (benchmark::AddCustomContext("git_rev", ...)) and
// allocator (bench's --allocator setting; the probe variant's rows get schema::glibc_default_allocator).
#pragma once

#include "reports/csv_io.hpp"

#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ped::reports {

struct GbenchContext {
  std::string host;
  std::string date;
  std::string git_rev;
  std::string allocator;  // bench's context "allocator" (tuned|default); empty when absent
};

struct MeasuredSample {
  Sample sample;
  double flop = std::numeric_limits<double>::quiet_NaN();
  double peak_bytes = std::numeric_limits<double>::quiet_NaN();
  double gemm_gflops = std::numeric_limits<double>::quiet_NaN();
  double query_tokens = std::numeric_limits<double>::quiet_NaN();
  double kv_bytes = std::numeric_limits<double>::quiet_NaN();
  double copy_gbps = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::pair<std::string, double>> phases;  // (phase name without "phase_", fraction)
};

struct GbenchRun {
  GbenchContext context;
  std::vector<MeasuredSample> samples;
  std::vector<std::string> skipped;  // "name: why"
};

// The key encoded in a benchmark name, or nullopt when the name is not "attention/...". Throws
// InputError naming `where` and the name when it starts with "attention/" but breaks the scheme.
std::optional<BenchmarkKey> parse_benchmark_name(std::string_view name, const std::string& where);

// `source` names the text in error messages (the file name). Throws InputError on anything a tidy
// CSV could not hold: a control character in a name or in context.host_name, date, git_rev; a size
// counter or repetition_index that is not an integer in [1 (0 for repetition_index), 2^53]; a time
// outside (0, max_time_ns]; a flop or gemm_gflops counter that is not finite and > 0, a byte count
// not finite and >= 0; a phase_ counter that is not a number in [0, 1] or whose name is not
// phase_[a-z_]+; the same (benchmark, repetition_index) twice.
GbenchRun parse_gbench_json(std::string_view text, const std::string& source);
GbenchRun read_gbench_json(const std::filesystem::path& file);

// FlashAttention's benchmark FLOP model: forward 4 B H Nq N d (Nq = N unless decoding), halved for a
// causal mask with Nq = N, backward 2.5x forward, forward_backward 3.5x forward. NaN for other masks,
// a causal decoding case and a variable-length batch, whose visible-pair count the benchmark must
// report through the "flop" counter.
double model_flop(const BenchmarkKey& key);

struct TidyBenchmarks {
  std::vector<BenchmarkRow> rows;  // sorted by key
  std::vector<Sample> samples;     // sorted by key, repetitions renumbered 0.. per key
  std::vector<PhaseRow> phases;    // sorted by key, then phase name; per phase the median over repetitions
};

// One row per key: median, min, max of time_ns over its samples; gflops = flop / median_ns
// (FLOP/ns = GFLOP/s), flop the median of the "flop" counters or model_flop; peak_bytes the largest
// reported; fraction_of_gemm = gflops / median gemm_gflops; tokens_per_s = median query_tokens (or
// B Nq without a lengths profile) / median time; gbytes_per_s = median kv_bytes / median_ns,
// fraction_of_copy = gbytes_per_s / median copy_gbps (nan without those counters). git_rev, host,
// date, allocator from `context`.
// Throws InputError when gflops, fraction_of_gemm or one of the rates comes out infinite.
TidyBenchmarks tidy_benchmarks(std::span<const MeasuredSample> samples, const GbenchContext& context);

}  // namespace ped::reports
