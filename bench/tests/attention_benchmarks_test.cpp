// Attention benchmarks run end to end through Google Benchmark: a configuration over the memory
// budget is skipped with an error (never run), a tiny run's JSON goes through reports/' conversion
// and its names come back as the same keys, and the LibTorch contenders compute what ours do.
#include "bench/attention_benchmarks.hpp"
#include "bench/bandwidth_ceiling.hpp"
#include "bench/harness.hpp"
#include "bench/libtorch_benchmarks.hpp"
#include "reports/csv_io.hpp"
#include "reports/gbench_json.hpp"

#include <benchmark/benchmark.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace ped::bench {
namespace {

// Keeps every run Google Benchmark reports (display reporter: nothing printed).
class CollectingReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override { collected.insert(collected.end(), runs.begin(), runs.end()); }
  std::vector<Run> collected;
};

// Runs exactly the benchmark named `name` (its regex special characters escaped: a lengths
// profile's parentheses).
template <class Reporter>
std::size_t run_only(Reporter& reporter, const std::string& name) {
  std::string pattern;
  for (char c : name) {
    if (std::string_view("()[]{}.*+?^$|\\").find(c) != std::string_view::npos) pattern += '\\';
    pattern += c;
  }
  // Google Benchmark appends its own suffixes (/iterations:1/real_time) to the registered name.
  return benchmark::RunSpecifiedBenchmarks(&reporter, "^" + pattern + "(/|$)");
}

void tiny_settings(double budget_gib) {
  settings().config.iterations = 1;
  settings().config.memory_budget_gib = budget_gib;
  settings().gemm_gflops = 100.0;  // a stand-in ceiling: the test checks it is carried through
}

TEST(AttentionBenchmarks, OverBudgetIsSkippedWithAnError) {
  tiny_settings(1e-6);  // about 1 KiB: any attention configuration needs more
  const AttentionCase c{.contender = Contender{"naive"}, .pass = Pass::forward, .mask = Mask::none(), .batch = 1,
                        .heads = 2, .seq_len = 48, .head_dim = 8, .threads = 1};
  register_attention_benchmark(c);
  register_shard();  // planned, then registered (harness.hpp)
  CollectingReporter reporter;
  ASSERT_EQ(run_only(reporter, c.name()), 1u);
  ASSERT_EQ(reporter.collected.size(), 1u);
  const auto& run = reporter.collected[0];
  EXPECT_TRUE(run.error_occurred);
  EXPECT_NE(run.error_message.find("needs "), std::string::npos) << run.error_message;
  EXPECT_NE(run.error_message.find(" GiB > budget "), std::string::npos) << run.error_message;
  EXPECT_EQ(run.iterations, 0);
}

TEST(AttentionBenchmarks, NamesRoundTripThroughTheReportConversion) {
  tiny_settings(8.0);
  const AttentionCase c{.contender = Contender{"flash"}, .pass = Pass::forward, .mask = Mask::causal(), .batch = 1,
                        .heads = 2, .seq_len = 64, .head_dim = 16, .threads = 1};
  register_attention_benchmark(c);
  register_shard();  // planned, then registered (harness.hpp)
  benchmark::AddCustomContext("git_rev", "roundtrip-test");
  std::ostringstream json, errors;
  MemoryJsonReporter reporter;
  reporter.SetOutputStream(&json);
  reporter.SetErrorStream(&errors);
  benchmark::RegisterMemoryManager(&memory_manager());
  ASSERT_EQ(run_only(reporter, c.name()), 1u);
  benchmark::RegisterMemoryManager(nullptr);

  const reports::GbenchRun run = reports::parse_gbench_json(json.str(), "test.json");
  ASSERT_TRUE(run.skipped.empty()) << run.skipped.front();
  ASSERT_EQ(run.samples.size(), 1u) << json.str();
  EXPECT_EQ(run.context.git_rev, "roundtrip-test");
  const reports::MeasuredSample& sample = run.samples[0];
  EXPECT_DOUBLE_EQ(sample.flop, 4.0 * 2 * 64 * 64 * 16 / 2);  // the FlashAttention model, causal
  EXPECT_DOUBLE_EQ(sample.gemm_gflops, 100.0);
  EXPECT_GT(sample.peak_bytes, 0.0);  // flash allocates its per-thread tiles inside the call

  // JSON -> tidy rows -> BENCH.csv on disk -> read back: the same key, and the same name.
  const reports::TidyBenchmarks tidy = reports::tidy_benchmarks(run.samples, run.context);
  ASSERT_EQ(tidy.rows.size(), 1u);
  const std::filesystem::path csv =
      std::filesystem::temp_directory_path() / ("ped_bench_roundtrip_" + std::to_string(::getpid()) + ".csv");
  std::ofstream(csv) << reports::format_benchmark_csv(tidy.rows);
  const std::vector<reports::BenchmarkRow> rows = reports::read_benchmark_csv(csv);
  std::filesystem::remove(csv);
  ASSERT_EQ(rows.size(), 1u);
  const reports::BenchmarkKey& key = rows[0].key;
  EXPECT_EQ(key.variant, "flash");
  EXPECT_EQ(key.pass, "forward");
  EXPECT_EQ(key.dtype, "float");
  EXPECT_EQ(key.mask, "causal");
  EXPECT_EQ(key.batch, 1);
  EXPECT_EQ(key.heads, 2);
  EXPECT_EQ(key.seq_len, 64);
  EXPECT_EQ(key.head_dim, 16);
  EXPECT_EQ(key.threads, 1);
  EXPECT_EQ(reports::benchmark_name(key), c.name());
  EXPECT_EQ(rows[0].repetitions, 1);
  EXPECT_EQ(rows[0].git_rev, "roundtrip-test");
  EXPECT_GT(rows[0].peak_bytes, 0.0);
  EXPECT_TRUE(std::isfinite(rows[0].fraction_of_gemm));
}

// Where the time goes: a flash benchmark reports phase_<name> counters for its pass (fractions that
// add up to 1 with phase_other) and they reach the tidy phase rows; naive, which times no phase,
// reports none.
TEST(AttentionBenchmarks, TimedPhasesReachTheReportConversion) {
  tiny_settings(8.0);
  const AttentionCase flash{.contender = Contender{"flash"}, .pass = Pass::forward_backward, .mask = Mask::causal(),
                            .batch = 1, .heads = 2, .seq_len = 160, .head_dim = 16, .threads = 1};
  AttentionCase naive = flash;
  naive.contender = Contender{"naive"};
  register_attention_benchmark(flash);
  register_shard();  // planned, then registered (harness.hpp)
  register_attention_benchmark(naive);
  register_shard();  // planned, then registered (harness.hpp)
  std::ostringstream json, errors;
  MemoryJsonReporter reporter;
  reporter.SetOutputStream(&json);
  reporter.SetErrorStream(&errors);
  ASSERT_EQ(run_only(reporter, flash.name()), 1u);
  reports::GbenchRun run = reports::parse_gbench_json(json.str(), "test.json");
  ASSERT_EQ(run.samples.size(), 1u) << json.str();
  double sum = 0.0;
  std::set<std::string> phases;
  for (const auto& [phase, fraction] : run.samples[0].phases) {
    phases.insert(phase);
    sum += fraction;
  }
  EXPECT_NEAR(sum, 1.0, 1e-12);
  for (const char* phase : {"score_gemm", "mask", "softmax", "value_gemm", "dv_gemm", "dp_gemm", "softmax_grad",
                            "dq_gemm", "dk_gemm", "dominated", "other"}) {
    EXPECT_EQ(phases.count(phase), 1u) << phase;
  }
  EXPECT_EQ(phases.size(), kAttentionPhaseCount + 1);
  for (const auto& [phase, fraction] : run.samples[0].phases) {
    if (phase == "score_gemm" || phase == "value_gemm" || phase == "dq_gemm") {
      EXPECT_GT(fraction, 0.0) << phase;
    }
  }
  const reports::TidyBenchmarks tidy = reports::tidy_benchmarks(run.samples, run.context);
  EXPECT_EQ(tidy.phases.size(), kAttentionPhaseCount + 1);

  std::ostringstream naive_json;
  MemoryJsonReporter naive_reporter;
  naive_reporter.SetOutputStream(&naive_json);
  naive_reporter.SetErrorStream(&errors);
  ASSERT_EQ(run_only(naive_reporter, naive.name()), 1u);
  run = reports::parse_gbench_json(naive_json.str(), "naive.json");
  ASSERT_EQ(run.samples.size(), 1u);
  EXPECT_TRUE(run.samples[0].phases.empty());
}

// Google Benchmark calls a benchmark's function again with more iterations until min_time has passed
// and reports only the last call; the phases, timed in the first call, must reach that report (they
// were lost for every benchmark whose first call was too short to end the iteration search).
TEST(AttentionBenchmarks, TimedPhasesSurviveTheIterationSearch) {
  tiny_settings(8.0);
  settings().config.iterations = 0;  // by min_time: a call of one iteration is far shorter than it
  settings().config.min_time = 0.02;
  const AttentionCase flash{.contender = Contender{"flash"}, .pass = Pass::forward, .mask = Mask::causal(),
                            .batch = 1, .heads = 1, .seq_len = 32, .head_dim = 8, .threads = 1};
  register_attention_benchmark(flash);
  register_shard();
  settings().config.iterations = 1;
  std::ostringstream json, errors;
  MemoryJsonReporter reporter;
  reporter.SetOutputStream(&json);
  reporter.SetErrorStream(&errors);
  ASSERT_EQ(run_only(reporter, flash.name()), 1u);
  // The reported call ran more than one iteration: there was a search.
  const std::string text = json.str();
  const std::size_t at = text.find("\"iterations\": ");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_GT(std::stoll(text.substr(at + 14)), 1) << text;
  const reports::GbenchRun run = reports::parse_gbench_json(text, "test.json");
  ASSERT_EQ(run.samples.size(), 1u) << text;
  EXPECT_EQ(run.samples[0].phases.size(), kAttentionPhaseCount + 1) << text;
}

// The LibTorch contenders compute the same attention as our kernels for every mask of the sweep
// (this pins down LibTorch 1.13's SDPA mask and scale conventions as the benchmarks use them, and
// each formulation's use of the additive mask).
TEST(LibTorchContenders, AgreeWithFlash) {
  const AttentionShape shape{.batch = 1, .heads = 2, .seq_q = 320, .seq_k = 320, .head_dim = 16};
  const auto count = static_cast<std::size_t>(shape.batch * shape.heads * shape.seq_q * shape.head_dim);
  std::vector<float> q(count), k(count), v(count), out(count);
  std::vector<RowStats<float>> stats(count / 16);
  fill_uniform(q.data(), count, 1);
  fill_uniform(k.data(), count, 2);
  fill_uniform(v.data(), count, 3);
  for (const Mask& mask : {Mask::none(), Mask::causal(), sliding_window_256(), bigbird_64()}) {
    attention_forward<float>(Variant::flash, shape, mask, 0.25f, q.data(), k.data(), v.data(), out.data(),
                             stats.data(), {.threads = 1});
    // Every LibTorch contender (the list bench registers from), the allocator probe included.
    for (const LibTorchContender& entry : libtorch_contenders()) {
      const Contender& contender = entry.contender;
      const std::vector<float> theirs = libtorch_attention_out(contender, mask, shape, q, k, v);
      ASSERT_EQ(theirs.size(), count);
      double worst = 0.0;
      for (std::size_t i = 0; i < count; ++i) worst = std::max(worst, std::abs(double(theirs[i]) - out[i]));
      EXPECT_LT(worst, 1e-5) << to_string(contender) << " " << mask.name();
    }
  }
}

// The feature cases' LibTorch formulations compute what flash computes with the features: K and V
// repeated for grouped-query heads, the padded batch under its (B, 1, N, N) mask for variable lengths
// (compared on the real rows), and bottom-right causal for decoding (an explicit mask, not is_causal).
TEST(LibTorchContenders, AgreeWithFlashOnTheFeatureCases) {
  const AttentionImpl& flash = attention_impl("flash");
  const AttentionCase cases[] = {
      {.mask = Mask::causal(), .batch = 1, .heads = 4, .seq_len = 40, .head_dim = 8, .threads = 1, .heads_kv = 2},
      {.mask = Mask::causal(), .batch = 3, .heads = 2, .seq_len = 40, .head_dim = 8, .threads = 1, .lengths_seed = 5},
      {.mask = Mask::causal(), .batch = 1, .heads = 4, .seq_len = 48, .head_dim = 8, .threads = 1, .heads_kv = 2,
       .seq_q = 4},
      {.mask = Mask::causal(), .batch = 1, .heads = 4, .seq_len = 48, .head_dim = 8, .threads = 1, .heads_kv = 1,
       .seq_q = 1},
  };
  for (AttentionCase c : cases) {
    const AttentionShape shape = c.shape();
    const auto q_count = static_cast<std::size_t>(c.batch * c.heads * c.queries() * c.head_dim);
    const auto kv_count = static_cast<std::size_t>(c.batch * c.kv_heads() * c.seq_len * c.head_dim);
    std::vector<float> q(q_count), k(kv_count), v(kv_count), out(q_count);
    std::vector<RowStats<float>> stats(q_count / static_cast<std::size_t>(c.head_dim));
    fill_uniform(q.data(), q_count, 1);
    fill_uniform(k.data(), kv_count, 2);
    fill_uniform(v.data(), kv_count, 3);
    const std::vector<std::int64_t> lengths = c.lengths();
    AttentionOptions options{.threads = 1};
    if (!lengths.empty()) options.features.seqlens_q = options.features.seqlens_k = lengths.data();
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    run_forward<float>(flash, shape, c.mask, scale, q.data(), k.data(), v.data(), out.data(), stats.data(), options);
    for (const LibTorchContender& entry : libtorch_contenders()) {
      c.contender = entry.contender;
      const std::vector<float> theirs = libtorch_case_out(c, q, k, v);
      ASSERT_EQ(theirs.size(), q_count);
      double worst = 0.0;
      std::size_t compared = 0;
      for (std::int64_t b = 0; b < c.batch; ++b) {
        const std::int64_t rows = lengths.empty() ? c.queries() : lengths[static_cast<std::size_t>(b)];
        for (std::int64_t h = 0; h < c.heads; ++h) {
          for (std::int64_t i = 0; i < rows; ++i) {
            for (std::int64_t x = 0; x < c.head_dim; ++x) {
              const auto at = static_cast<std::size_t>(((b * c.heads + h) * c.queries() + i) * c.head_dim + x);
              worst = std::max(worst, std::abs(double(theirs[at]) - out[at]));
              ++compared;
            }
          }
        }
      }
      EXPECT_GT(compared, 0u);
      EXPECT_LT(worst, 1e-5) << c.name();
    }
  }
}

// A decoding case's counters reach BENCH.csv: the key's H_kv and Nq, query tokens per second, the
// bytes of K and V and the fraction of the copy ceiling; and a variable-length case's lengths
// profile and real-pair FLOP.
TEST(AttentionBenchmarks, FeatureCasesRoundTripThroughTheReportConversion) {
  tiny_settings(8.0);
  settings().copy_gbps = 10.0;  // a stand-in ceiling: the test checks it is carried through
  const AttentionCase decode{.contender = Contender{"flash"}, .pass = Pass::forward, .mask = Mask::causal(),
                             .batch = 1, .heads = 4, .seq_len = 96, .head_dim = 8, .threads = 1, .heads_kv = 2,
                             .seq_q = 3};
  const AttentionCase varlen{.contender = Contender{"flash"}, .pass = Pass::forward, .mask = Mask::causal(),
                             .batch = 3, .heads = 2, .seq_len = 32, .head_dim = 8, .threads = 1, .lengths_seed = 9};
  for (const AttentionCase& c : {decode, varlen}) {
    register_attention_benchmark(c);
    register_shard();  // planned, then registered (harness.hpp)
    std::ostringstream json, errors;
    MemoryJsonReporter reporter;
    reporter.SetOutputStream(&json);
    reporter.SetErrorStream(&errors);
    benchmark::RegisterMemoryManager(&memory_manager());
    ASSERT_EQ(run_only(reporter, c.name()), 1u) << c.name();
    benchmark::RegisterMemoryManager(nullptr);
    const reports::GbenchRun run = reports::parse_gbench_json(json.str(), "test.json");
    ASSERT_EQ(run.samples.size(), 1u) << json.str();
    const reports::MeasuredSample& sample = run.samples[0];
    const reports::TidyBenchmarks tidy = reports::tidy_benchmarks(run.samples, run.context);
    const std::filesystem::path csv =
        std::filesystem::temp_directory_path() / ("ped_bench_features_" + std::to_string(::getpid()) + ".csv");
    std::ofstream(csv) << reports::format_benchmark_csv(tidy.rows);
    const std::vector<reports::BenchmarkRow> rows = reports::read_benchmark_csv(csv);
    std::filesystem::remove(csv);
    ASSERT_EQ(rows.size(), 1u);
    const reports::BenchmarkRow& row = rows[0];
    EXPECT_EQ(reports::benchmark_name(row.key), c.name());
    if (c.seq_q != 0) {
      EXPECT_EQ(row.key.kv_heads(), 2);
      EXPECT_EQ(row.key.queries(), 3);
      EXPECT_EQ(row.key.seq_len, 96);
      EXPECT_DOUBLE_EQ(sample.query_tokens, 3.0);
      EXPECT_DOUBLE_EQ(sample.kv_bytes, 2.0 * 2 * 96 * 8 * 4);
      EXPECT_DOUBLE_EQ(sample.copy_gbps, 10.0);
      std::int64_t pairs = 0;  // bottom-right causal: query i sees keys 0 ... 93 + i
      for (std::int64_t i = 0; i < 3; ++i) pairs += 94 + i;
      EXPECT_DOUBLE_EQ(sample.flop, 4.0 * 4 * 8 * pairs);
      EXPECT_DOUBLE_EQ(row.tokens_per_s, 3.0 / row.median_ns * 1e9);
      EXPECT_DOUBLE_EQ(row.gbytes_per_s, 2.0 * 2 * 96 * 8 * 4 / row.median_ns);
      EXPECT_NEAR(row.fraction_of_copy, row.gbytes_per_s / 10.0, 1e-12 * row.fraction_of_copy);
    } else {
      EXPECT_EQ(row.key.lengths, "mixed(seed=9)");
      EXPECT_EQ(row.key.batch, 3);
      const std::vector<std::int64_t> lengths = mixed_lengths(9, 3, 32);
      double tokens = 0, pairs = 0;
      for (std::int64_t l : lengths) {
        tokens += static_cast<double>(l);
        pairs += static_cast<double>(l * (l + 1) / 2);
      }
      EXPECT_DOUBLE_EQ(sample.query_tokens, tokens);
      EXPECT_DOUBLE_EQ(sample.flop, 4.0 * 2 * 8 * pairs);
      EXPECT_TRUE(std::isnan(sample.kv_bytes));  // the bandwidth counters are the decoding cases'
      EXPECT_TRUE(std::isnan(row.fraction_of_copy));
      EXPECT_DOUBLE_EQ(row.tokens_per_s, tokens / row.median_ns * 1e9);
    }
  }
  settings().copy_gbps = 0.0;
}

TEST(CopyCeiling, MeasuresAPositiveRateAndRefusesBadSizes) {
  EXPECT_GT(measure_copy_gbps(1 << 20, 2, 2), 0.0);
  EXPECT_GE(default_copy_bytes(), std::int64_t{256} << 20);
  EXPECT_LE(default_copy_bytes(), std::int64_t{1} << 30);
  EXPECT_THROW(measure_copy_gbps(0, 1), std::invalid_argument);
  EXPECT_THROW(measure_copy_gbps(1024, 0), std::invalid_argument);
  EXPECT_THROW(measure_copy_gbps(1024, 1, 0), std::invalid_argument);
}

}  // namespace
}  // namespace ped::bench
