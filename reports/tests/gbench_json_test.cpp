// Google Benchmark JSON -> tidy rows, on a hand-written document in the format of
// --benchmark_format=json (Google Benchmark 1.7).
#include "core/errors.hpp"
#include "reports/gbench_json.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace ped::reports {
namespace {

const char* const run_json = R"({
  "context": {
    "date": "2025-11-28T10:00:00+00:00", "host_name": "bench-host", "executable": "./bench",
    "num_cpus": 2, "mhz_per_cpu": 3000, "cpu_scaling_enabled": false, "library_build_type": "release",
    "git_rev": "0123abc"
  },
  "benchmarks": [
    {"name": "attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:2/real_time", "family_index": 0,
     "per_family_instance_index": 0, "run_name": "attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:2/real_time",
     "run_type": "iteration", "repetitions": 3, "repetition_index": 0, "threads": 1, "iterations": 10,
     "real_time": 2.0, "cpu_time": 3.9, "time_unit": "ms", "flop": 1.0e9, "gemm_gflops": 100.0,
     "allocs_per_iter": 4, "max_bytes_used": 1048576},
    {"name": "attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:2/real_time", "run_type": "iteration",
     "run_name": "attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:2/real_time",
     "repetitions": 3, "repetition_index": 1, "threads": 1, "iterations": 10,
     "real_time": 4.0, "cpu_time": 7.9, "time_unit": "ms", "flop": 1.0e9, "gemm_gflops": 100.0,
     "max_bytes_used": 2097152},
    {"name": "attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:2/real_time", "run_type": "iteration",
     "run_name": "attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:2/real_time",
     "repetitions": 3, "repetition_index": 2, "threads": 1, "iterations": 10,
     "real_time": 2500.0, "cpu_time": 5000.0, "time_unit": "us", "flop": 1.0e9, "gemm_gflops": 100.0,
     "max_bytes_used": 1048576},
    {"name": "attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:2/real_time_mean", "run_type": "aggregate",
     "run_name": "attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:2/real_time", "aggregate_name": "mean",
     "real_time": 2.83, "cpu_time": 5.6, "time_unit": "ms"},
    {"name": "attention/libtorch_sdpa/backward/double/none/repeats:1", "run_name": "attention/libtorch_sdpa/backward/double/none/repeats:1",
     "run_type": "iteration", "repetitions": 1, "repetition_index": 0, "threads": 4, "iterations": 5,
     "real_time": 123456.0, "cpu_time": 1.0, "time_unit": "ns", "batch": 2, "heads": 4, "seq_len": 256, "head_dim": 32},
    {"name": "gemm/sgemm/T:2", "run_name": "gemm/sgemm/T:2", "run_type": "iteration", "repetitions": 1,
     "repetition_index": 0, "threads": 1, "iterations": 100, "real_time": 10.0, "cpu_time": 10.0, "time_unit": "us"},
    {"name": "attention/naive/forward/float/none/B:1/H:8/N:65536/d:64/T:2", "run_name": "attention/naive/forward/float/none/B:1/H:8/N:65536/d:64/T:2",
     "run_type": "iteration", "repetitions": 1, "repetition_index": 0, "threads": 1, "iterations": 0,
     "real_time": 0.0, "cpu_time": 0.0, "time_unit": "ns", "error_occurred": true, "error_message": "needs 128 GiB"}
  ]
})";

TEST(GbenchJson, ConvertsIterationRunsToTidyRows) {
  const GbenchRun run = parse_gbench_json(run_json, "run.json");
  EXPECT_EQ(run.context.host, "bench-host");
  EXPECT_EQ(run.context.git_rev, "0123abc");
  ASSERT_EQ(run.samples.size(), 4u);  // 3 flash repetitions + 1 sdpa; aggregate, gemm and error skipped
  ASSERT_EQ(run.skipped.size(), 2u);
  EXPECT_NE(run.skipped[0].find("gemm/sgemm/T:2"), std::string::npos);
  EXPECT_NE(run.skipped[1].find("needs 128 GiB"), std::string::npos);

  const TidyBenchmarks tidy = tidy_benchmarks(run.samples, run.context);
  ASSERT_EQ(tidy.rows.size(), 2u);
  ASSERT_EQ(tidy.samples.size(), 4u);
  // Rows are sorted by key: "flash" < "libtorch_sdpa".
  const BenchmarkRow& flash = tidy.rows[0];
  EXPECT_EQ(flash.key, (BenchmarkKey{"flash", "forward", "float", 1, 8, 1024, 64, "causal", 2}));
  EXPECT_EQ(flash.repetitions, 3);
  EXPECT_DOUBLE_EQ(flash.median_ns, 2.5e6);  // 2 ms, 4 ms, 2500 us
  EXPECT_DOUBLE_EQ(flash.min_ns, 2.0e6);
  EXPECT_DOUBLE_EQ(flash.max_ns, 4.0e6);
  EXPECT_DOUBLE_EQ(flash.gflops, 1e9 / 2.5e6);  // FLOP / ns = GFLOP/s
  EXPECT_DOUBLE_EQ(flash.peak_bytes, 2097152.0);
  EXPECT_DOUBLE_EQ(flash.fraction_of_gemm, 4.0);  // 400 GFLOP/s over a 100 GFLOP/s ceiling
  EXPECT_EQ(flash.git_rev, "0123abc");
  EXPECT_EQ(flash.host, "bench-host");

  // Sizes from counters, threads from Google Benchmark's field, FLOP from the model (no "flop").
  const BenchmarkRow& sdpa = tidy.rows[1];
  EXPECT_EQ(sdpa.key, (BenchmarkKey{"libtorch_sdpa", "backward", "double", 2, 4, 256, 32, "none", 4}));
  EXPECT_DOUBLE_EQ(sdpa.gflops, 2.5 * 4.0 * 2 * 4 * 256.0 * 256.0 * 32 / 123456.0);
  EXPECT_TRUE(std::isnan(sdpa.peak_bytes));
  EXPECT_TRUE(std::isnan(sdpa.fraction_of_gemm));

  // Repetitions are renumbered per key, in order of appearance.
  EXPECT_EQ(tidy.samples[2].repetition, 2);
  EXPECT_DOUBLE_EQ(tidy.samples[2].time_ns, 2.5e6);
}

TEST(GbenchJson, RepetitionsFromSeveralFilesAreConcatenated) {
  GbenchRun first = parse_gbench_json(run_json, "a.json");
  const GbenchRun second = parse_gbench_json(run_json, "b.json");
  first.samples.insert(first.samples.end(), second.samples.begin(), second.samples.end());
  const TidyBenchmarks tidy = tidy_benchmarks(first.samples, first.context);
  EXPECT_EQ(tidy.rows[0].repetitions, 6);
  EXPECT_EQ(tidy.samples[5].repetition, 5);
}

TEST(GbenchJson, ParsesNamesAndRejectsBrokenOnes) {
  const auto key = parse_benchmark_name("attention/sparse/forward_backward/double/bigbird/B:2/H:4/N:512/d:16/T:8/"
                                        "repeats:9/min_time:0.5/manual_time",
                                        "here");
  ASSERT_TRUE(key);
  EXPECT_EQ(*key, (BenchmarkKey{"sparse", "forward_backward", "double", 2, 4, 512, 16, "bigbird", 8}));
  EXPECT_FALSE(parse_benchmark_name("BM_Gemm/1024", "here"));
  EXPECT_THROW(parse_benchmark_name("attention/flash/forward", "here"), InputError);
  EXPECT_THROW(parse_benchmark_name("attention/flash/sideways/float/causal/B:1", "here"), InputError);
  EXPECT_THROW(parse_benchmark_name("attention/flash/forward/float/causal/Q:1", "here"), InputError);
  EXPECT_THROW(parse_benchmark_name("attention/flash/forward/float/causal/N:-4", "here"), InputError);
  try {
    parse_benchmark_name("attention/flash/forward/float/causal/N:x", "run.json: benchmarks[3]");
    FAIL() << "no error";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("run.json: benchmarks[3]: benchmark name 'attention/flash/forward/float/causal/N:x'"),
              std::string::npos)
        << error.what();
  }
}

TEST(GbenchJson, RejectsBadDocuments) {
  EXPECT_THROW(parse_gbench_json("{not json", "x.json"), InputError);
  EXPECT_THROW(parse_gbench_json(R"({"context": {}})", "x.json"), InputError);
  // A size neither in the name nor as a counter.
  EXPECT_THROW(parse_gbench_json(R"({"benchmarks": [{"name": "attention/flash/forward/float/causal/B:1/H:1/d:8",
                                     "run_type": "iteration", "real_time": 1, "time_unit": "ns", "threads": 1}]})",
                                 "x.json"),
               InputError);
  EXPECT_THROW(parse_gbench_json(R"({"benchmarks": [{"name": "attention/flash/forward/float/causal/B:1/H:1/N:2/d:8",
                                     "run_type": "iteration", "real_time": 1, "time_unit": "fortnights", "threads": 1}]})",
                                 "x.json"),
               InputError);
}

// One iteration run of flash at N = 128 with `fields` added to it, in a document with `context`.
std::string one_run(const std::string& fields, const std::string& context = R"({"host_name": "h"})") {
  return R"({"context": )" + context + R"(, "benchmarks": [{"name": "attention/flash/forward/float/causal/B:1/H:2/N:128/d:16/T:1",
            "run_type": "iteration", "repetition_index": 0, "threads": 1, "real_time": 10.0, "time_unit": "us")" +
         (fields.empty() ? "" : ", " + fields) + "}]}";
}

std::string without(std::string text, const std::string& part) {
  return text.erase(text.find(part), part.size());
}

std::string json_error(const std::string& text) {
  try {
    parse_gbench_json(text, "run.json");
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}

TEST(GbenchJson, RefusesCountersAndFieldsOutsideTheirMeaning) {
  EXPECT_EQ(json_error(one_run("")), "");
  const struct {
    std::string text;
    std::string expected;
  } cases[] = {
      // Converting 1e300 to a 64-bit integer is undefined behaviour; it must be refused first.
      {R"({"benchmarks": [{"name": "attention/flash/forward/float/causal/B:1/H:2/d:16/T:1", "run_type": "iteration",
           "real_time": 1, "seq_len": 1e300}]})",
       "run.json: benchmarks[0]: counter seq_len 1e+300 of benchmark 'attention/flash/forward/float/causal/B:1/H:2/d:16/T:1' "
       "is not an integer in [1, 2^53]"},
      {without(one_run(R"("repetition_index": 1e300)"), R"("repetition_index": 0, )"),
       "run.json: benchmarks[0]: repetition_index 1e+300 is not an integer in [0, 2^53]"},
      {without(one_run(R"("repetition_index": -1)"), R"("repetition_index": 0, )"),
       "run.json: benchmarks[0]: repetition_index -1 is not an integer in [0, 2^53]"},
      {one_run(R"("flop": -5)"), "run.json: benchmarks[0]: counter flop -5 is not a finite number > 0"},
      {one_run(R"("flop": 0)"), "run.json: benchmarks[0]: counter flop 0 is not a finite number > 0"},
      {one_run(R"("flop": "many")"), "run.json: benchmarks[0]: flop is not a number"},
      {one_run(R"("gemm_gflops": 0)"), "run.json: benchmarks[0]: counter gemm_gflops 0 is not a finite number > 0"},
      {one_run(R"("max_bytes_used": -1)"), "run.json: benchmarks[0]: max_bytes_used -1 is not a finite number >= 0"},
      {one_run(R"("peak_bytes": -1)"), "run.json: benchmarks[0]: counter peak_bytes -1 is not a finite number >= 0"},
      // A number beyond the range of double is a JSON library error of its own kind (out_of_range).
      {one_run(R"("peak_bytes": 1e999)"), "run.json: not valid JSON: [json.exception.out_of_range.406] number overflow"},
      {without(one_run(R"("real_time": 1e300)"), R"("real_time": 10.0, )"),
       "run.json: benchmarks[0]: benchmark 'attention/flash/forward/float/causal/B:1/H:2/N:128/d:16/T:1' has real_time "
       "1e+300 us, expected a positive number up to 8.64e+13 ns (one day)"},
      {one_run("", R"({"host_name": "h\nx"})"),
       "run.json: context.host_name 'h\\x0ax' holds a control character (expected printable text)"},
      {one_run("", R"({"date": "d\u0000"})"),
       "run.json: context.date 'd\\x00' holds a control character (expected printable text)"},
      {one_run(R"("error_occurred": "yes")"), "run.json: benchmarks[0]: error_occurred is not true or false"},
  };
  for (const auto& c : cases) {
    const std::string error = json_error(c.text);
    EXPECT_EQ(error.rfind(c.expected, 0), 0u) << c.text << "\n -> " << error;
  }
  // A name part with a control character would make a CSV cell the readers refuse.
  EXPECT_THROW(parse_benchmark_name("attention/fl\tash/forward/float/causal/B:1/H:2/N:128/d:16", "here"), InputError);
}

TEST(GbenchJson, ParseErrorIsOneLineEvenWhenItQuotesTheInput) {
  // The JSON library's message quotes the bytes it last read, escaping those below 0x20 but not DEL
  // (0x7f), here before an ill-formed UTF-8 byte.
  const std::string error = json_error("{\"context\": {\"host_name\": \"a\x7f\xff\"}, \"benchmarks\": []}");
  EXPECT_EQ(error.rfind("run.json: not valid JSON (byte ", 0), 0u) << error;
  EXPECT_EQ(error.find('\x7f'), std::string::npos) << error;
  EXPECT_NE(error.find("a\\x7f"), std::string::npos) << error;
}

TEST(GbenchJson, RefusesARepetitionGivenTwice) {
  std::string text = one_run("");
  const std::string run = text.substr(text.find("{\"name\""), text.rfind('}', text.size() - 3) - text.find("{\"name\"") + 1);
  text.insert(text.rfind(']'), ", " + run);
  EXPECT_EQ(json_error(text).rfind("run.json: benchmarks[1]: repetition 0 of attention/flash/forward/float/causal/"
                                   "B:1/H:2/N:128/d:16/T:1 appears twice (first in benchmarks[0])",
                                   0),
            0u)
      << text << "\n -> " << json_error(text);
}

TEST(ModelFlop, FlashAttentionConvention) {
  BenchmarkKey key{"flash", "forward", "float", 2, 3, 100, 8, "none", 1};
  EXPECT_DOUBLE_EQ(model_flop(key), 4.0 * 2 * 3 * 100 * 100 * 8);
  key.mask = "causal";
  EXPECT_DOUBLE_EQ(model_flop(key), 2.0 * 2 * 3 * 100 * 100 * 8);
  key.pass = "backward";
  EXPECT_DOUBLE_EQ(model_flop(key), 2.5 * 2.0 * 2 * 3 * 100 * 100 * 8);
  key.pass = "forward_backward";
  EXPECT_DOUBLE_EQ(model_flop(key), 3.5 * 2.0 * 2 * 3 * 100 * 100 * 8);
  key.mask = "sliding_window_64";
  EXPECT_TRUE(std::isnan(model_flop(key)));
}

}  // namespace
}  // namespace ped::reports
