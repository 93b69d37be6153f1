// report summarize's speed-up column (against the fastest LibTorch contender of the run, named) and
// its allocator section (the run's setting and the in-run probe of glibc's default allocator), on
// hand-written benchmark CSVs.
#include "core/errors.hpp"
#include "core/process.hpp"
#include "core/schemas.hpp"
#include "reports/gbench_json.hpp"
#include "reports/summary.hpp"
#include "tests/test_files.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ped::reports {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::write_text;

const std::string header =
    "variant,pass,dtype,batch,heads,seq_len,head_dim,mask,threads,repetitions,median_ns,min_ns,max_ns,gflops,"
    "peak_bytes,fraction_of_gemm,git_rev,host,date,allocator\n";

// A row of forward/float/causal/B=1/H=8/d=64/T=2 with median = min = max = `ms` milliseconds.
std::string row(const std::string& variant, int n, double ms, const std::string& allocator = "tuned",
                const std::string& pass = "forward") {
  const std::string ns = std::to_string(static_cast<long long>(ms * 1e6));
  return variant + "," + pass + ",float,1,8," + std::to_string(n) + ",64,causal,2,3," + ns + "," + ns + "," + ns +
         ",1,1,0.5,rev,host,date," + allocator + "\n";
}

// summary.md of `csv` (the text of a bench CSV), plots off.
std::string summarize(const std::string& csv) {
  const TempDirectory dir("ped-summary-test-");
  write_text(dir.path() / "bench.csv", csv);
  write_summary({.bench_csv = dir.path() / "bench.csv", .verify_csv = std::nullopt, .out_dir = dir.path() / "out",
                 .gnuplot = "/nonexistent/gnuplot", .plot_format = "png"});
  return read_text(dir.path() / "out" / "summary.md");
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The first line of `text` that starts with `start` ("" when none).
std::string line_of(const std::string& text, const std::string& start) {
  const std::size_t at = text.find("\n" + start);
  if (at == std::string::npos) return "";
  return text.substr(at + 1, text.find('\n', at + 1) - at - 1);
}

TEST(SummarySpeedUp, IsAgainstTheFastestLibTorchContenderWhichTheHeaderNames) {
  // libtorch_addmm is the fastest LibTorch contender at both N; the probe is faster still at N = 1024
  // but is not a contender.
  const std::string md = summarize(header + row("flash", 1024, 10) + row("flash", 2048, 40) +
                                   row("libtorch_sdpa", 1024, 60) + row("libtorch_sdpa", 2048, 200) +
                                   row("libtorch_addmm", 1024, 30) + row("libtorch_addmm", 2048, 100) +
                                   row("libtorch_sdpa_glibc_default", 1024, 5, "glibc_default") +
                                   row("libtorch_sdpa_glibc_default", 2048, 600, "glibc_default"));
  EXPECT_TRUE(contains(md, "| speed-up vs fastest LibTorch (libtorch_addmm) | fraction of GEMM |")) << md;
  // flash at 1024: 30 / 10, not against the probe (5 / 10); at 2048: 100 / 40.
  EXPECT_EQ(line_of(md, "| flash | 1024 |").substr(line_of(md, "| flash | 1024 |").rfind("× |") - 4), "3.00× | 0.500 |");
  EXPECT_EQ(line_of(md, "| flash | 2048 |").substr(line_of(md, "| flash | 2048 |").rfind("× |") - 4), "2.50× | 0.500 |");
  EXPECT_TRUE(contains(line_of(md, "| libtorch_sdpa | 1024 |"), "| 0.50× |")) << md;  // 30 / 60
  EXPECT_FALSE(contains(md, "vs libtorch_sdpa")) << md;
}

TEST(SummarySpeedUp, NamesTheFastestInEachCellWhenItChangesWithN) {
  const std::string md = summarize(header + row("flash", 1024, 10) + row("flash", 2048, 40) +
                                   row("libtorch_sdpa", 1024, 20) + row("libtorch_sdpa", 2048, 200) +
                                   row("libtorch_addmm", 1024, 30) + row("libtorch_addmm", 2048, 100));
  EXPECT_TRUE(contains(md, "| speed-up vs fastest LibTorch | fraction of GEMM |")) << md;
  EXPECT_TRUE(contains(md, "| 2.00× vs libtorch_sdpa |")) << md;   // flash at 1024
  EXPECT_TRUE(contains(md, "| 2.50× vs libtorch_addmm |")) << md;  // flash at 2048
}

TEST(SummarySpeedUp, WithoutALibTorchContenderIsNotAvailable) {
  const std::string md = summarize(header + row("flash", 1024, 10));
  EXPECT_TRUE(contains(md, "| speed-up vs fastest LibTorch | fraction of GEMM |")) << md;
  EXPECT_TRUE(contains(md, "| n/a |")) << md;
}

TEST(SummaryAllocator, StatesTheSettingAndTheInRunCostOfGlibcsDefault) {
  const std::string md = summarize(header + row("flash", 1024, 10) + row("libtorch_sdpa", 1024, 50) +
                                   row("libtorch_sdpa", 2048, 100) + row("libtorch_sdpa", 2048, 300, "tuned", "forward_backward") +
                                   row("libtorch_sdpa_glibc_default", 1024, 100, "glibc_default") +
                                   row("libtorch_sdpa_glibc_default", 2048, 600, "glibc_default") +
                                   row("libtorch_sdpa_glibc_default", 2048, 450, "glibc_default", "forward_backward"));
  EXPECT_TRUE(contains(md, "Heap allocator setting of the run: `tuned`.")) << md;
  // The headline: the largest N, and there the largest ratio.
  EXPECT_TRUE(contains(md, "Measured in this run: under glibc's default allocator `libtorch_sdpa` took 6.00× as long at "
                           "N = 2048 (forward, causal, d=64, B=1, H=8, T=2).")) << md;
  EXPECT_TRUE(contains(md, "| libtorch_sdpa | forward | causal | 64 | 1024 | 50 ms | 100 ms | 2.00× |")) << md;
  EXPECT_TRUE(contains(md, "| libtorch_sdpa | forward_backward | causal | 64 | 2048 | 300 ms | 450 ms | 1.50× |")) << md;
  // The allocator section comes before the benchmark tables.
  EXPECT_LT(md.find("## Allocator"), md.find("## Benchmarks")) << md;
}

TEST(SummaryAllocator, AFileWithoutTheColumnOrTheProbeSaysSo) {
  std::string old_header = header;
  old_header.resize(old_header.size() - std::string(",allocator\n").size());
  std::string old_row = row("libtorch_sdpa", 1024, 50);
  old_row.resize(old_row.size() - std::string(",tuned\n").size());
  const std::string md = summarize(old_header + "\n" + old_row + "\n");
  EXPECT_TRUE(contains(md, "Heap allocator setting of the run: not recorded.")) << md;
  EXPECT_TRUE(contains(md, "No in-run measurement of glibc's default allocator in this file")) << md;
  const std::string untuned = summarize(header + row("libtorch_sdpa", 1024, 50, "default"));
  EXPECT_TRUE(contains(untuned, "Heap allocator setting of the run: `default`.")) << untuned;
}

// report convert: the run's allocator from the JSON context on every row, glibc_default on the probe's.
TEST(AllocatorColumn, ComesFromTheContextAndTheProbeIsMarked) {
  const std::string json = R"({"context": {"date": "d", "host_name": "h", "git_rev": "r", "allocator": "tuned"},
    "benchmarks": [
      {"name": "attention/libtorch_sdpa/forward/float/causal/B:1/H:8/N:1024/d:64/T:2", "run_type": "iteration",
       "repetition_index": 0, "real_time": 2.0, "time_unit": "ms"},
      {"name": "attention/libtorch_sdpa_glibc_default/forward/float/causal/B:1/H:8/N:1024/d:64/T:2",
       "run_type": "iteration", "repetition_index": 0, "real_time": 9.0, "time_unit": "ms"}]})";
  const GbenchRun run = parse_gbench_json(json, "run.json");
  EXPECT_EQ(run.context.allocator, "tuned");
  const TidyBenchmarks tidy = tidy_benchmarks(run.samples, run.context);
  ASSERT_EQ(tidy.rows.size(), 2u);
  EXPECT_EQ(tidy.rows[0].key.variant, "libtorch_sdpa");
  EXPECT_EQ(tidy.rows[0].allocator, "tuned");
  EXPECT_EQ(tidy.rows[1].allocator, schema::glibc_default_allocator);
  // Written and read back; a file without the column reads as not recorded (empty).
  const std::vector<BenchmarkRow> back = parse_benchmark_csv(format_benchmark_csv(tidy.rows), "bench.csv");
  EXPECT_EQ(back[0].allocator, "tuned");
  EXPECT_EQ(back[1].allocator, "glibc_default");
  const std::vector<BenchmarkRow> old = parse_benchmark_csv(
      "variant,pass,dtype,batch,heads,seq_len,head_dim,mask,threads,repetitions,median_ns,min_ns,max_ns,gflops,"
      "peak_bytes,fraction_of_gemm,git_rev,host,date\n"
      "flash,forward,float,1,8,1024,64,causal,2,9,1000,900,1100,1,1,1,r,h,d\n",
      "old.csv");
  EXPECT_EQ(old[0].allocator, "");
  // A control character is refused like in the other text columns.
  EXPECT_THROW(parse_benchmark_csv(header + "flash,forward,float,1,8,1024,64,causal,2,9,1000,900,1100,1,1,1,r,h,d,\"a\x01\"\n",
                                   "bad.csv"),
               InputError);
}

}  // namespace
}  // namespace ped::reports
