// The key columns of the feature cases (heads_kv, seq_q, lengths) and their rates (tokens_per_s,
// gbytes_per_s, fraction_of_copy): names, the CSV round trip, files from before the columns, and the
// summary's grouped-query, variable-length and decoding sections, on hand-written inputs.
#include "core/errors.hpp"
#include "core/process.hpp"
#include "core/schemas.hpp"
#include "reports/compare.hpp"
#include "reports/csv_io.hpp"
#include "reports/gbench_json.hpp"
#include "reports/summary.hpp"
#include "tests/test_files.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace ped::reports {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::write_text;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

BenchmarkKey key(std::string variant, std::int64_t heads_kv, std::int64_t seq_q, std::string lengths,
                 std::int64_t n = 1024, std::int64_t batch = 1) {
  return {.variant = std::move(variant), .pass = "forward", .dtype = "float", .batch = batch, .heads = 8,
          .seq_len = n, .head_dim = 64, .mask = "causal", .threads = 2, .heads_kv = heads_kv, .seq_q = seq_q,
          .lengths = std::move(lengths)};
}

BenchmarkRow row_of(const BenchmarkKey& k, double ns) {
  BenchmarkRow row;
  row.key = k;
  row.repetitions = 3;
  row.median_ns = row.min_ns = row.max_ns = ns;
  row.gflops = 1.0;
  row.peak_bytes = 1024;
  row.fraction_of_gemm = 0.1;
  row.git_rev = "rev";
  row.host = "host";
  row.date = "date";
  row.allocator = "tuned";
  return row;
}

TEST(FeatureKeys, NamesParseBackToTheKeyInCanonicalForm) {
  const BenchmarkKey decode = key("flash", 2, 16, "");
  EXPECT_EQ(benchmark_name(decode), "attention/flash/forward/float/causal/B:1/H:8/Hkv:2/Nq:16/N:1024/d:64/T:2");
  const BenchmarkKey varlen = key("flash", 0, 0, "mixed(seed=20250101)", 512, 4);
  EXPECT_EQ(benchmark_name(varlen), "attention/flash/forward/float/causal/B:4/H:8/N:512/d:64/L:mixed(seed=20250101)/T:2");
  for (const BenchmarkKey& k : {decode, varlen, key("naive", 0, 0, "")}) {
    EXPECT_EQ(parse_benchmark_name(benchmark_name(k), "test"), k) << benchmark_name(k);
  }
  // Hkv equal to H and Nq equal to N are plain attention: one key whichever way it was written.
  BenchmarkKey spelled = *parse_benchmark_name("attention/flash/forward/float/causal/B:1/H:8/Hkv:8/Nq:1024/N:1024/d:64/T:2", "t");
  canonicalize(spelled);
  EXPECT_EQ(spelled, key("flash", 0, 0, ""));
  EXPECT_THROW(parse_benchmark_name("attention/flash/forward/float/causal/B:1/H:8/N:64/d:8/L:/T:2", "t"), InputError);
  EXPECT_THROW(parse_benchmark_name("attention/flash/forward/float/causal/B:1/H:8/Hkv:0/N:64/d:8/T:2", "t"), InputError);
  // A JSON run whose Hkv does not divide H is refused.
  const std::string json =
      R"({"context": {}, "benchmarks": [{"name": "attention/flash/forward/float/causal/B:1/H:8/Hkv:3/N:64/d:8/T:2",)"
      R"( "run_type": "iteration", "real_time": 1, "time_unit": "ms"}]})";
  try {
    parse_gbench_json(json, "run.json");
    ADD_FAILURE() << "accepted Hkv:3 of H:8";
  } catch (const InputError& error) {
    EXPECT_TRUE(contains(error.what(), "heads_kv 3 is not in [1, heads 8) dividing heads")) << error.what();
  }
}

TEST(FeatureKeys, CsvRoundTripAndFilesWithoutTheColumns) {
  std::vector<BenchmarkRow> rows = {row_of(key("flash", 2, 16, ""), 1000), row_of(key("flash", 2, 0, ""), 2000),
                                    row_of(key("flash", 0, 0, "mixed(seed=7)", 1024, 4), 3000),
                                    row_of(key("flash", 0, 0, ""), 4000)};
  rows[0].tokens_per_s = 16e6;
  rows[0].gbytes_per_s = 4.25;
  rows[0].fraction_of_copy = 0.5;
  const std::string text = format_benchmark_csv(rows);
  EXPECT_EQ(text.substr(0, text.find('\n') + 1), schema::header_line(schema::benchmark_columns));
  // The full values are written: a plain row says heads_kv 8 and seq_q 1024.
  EXPECT_TRUE(contains(text, ",tuned,8,1024,,nan,nan,nan\n")) << text;
  EXPECT_TRUE(contains(text, ",tuned,2,16,,1.6e+07,4.25,0.5\n")) << text;
  const std::vector<BenchmarkRow> back = parse_benchmark_csv(text, "bench.csv");
  ASSERT_EQ(back.size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(back[i].key, rows[i].key) << i;
    EXPECT_EQ(std::isnan(back[i].tokens_per_s), std::isnan(rows[i].tokens_per_s)) << i;
  }
  EXPECT_DOUBLE_EQ(back[0].fraction_of_copy, 0.5);
  EXPECT_EQ(format_benchmark_csv(back), text);

  // A file from before the columns reads as plain attention, the same key as a new file's plain row.
  const std::string old =
      "variant,pass,dtype,batch,heads,seq_len,head_dim,mask,threads,repetitions,median_ns,min_ns,max_ns,gflops,"
      "peak_bytes,fraction_of_gemm,git_rev,host,date\n"
      "flash,forward,float,1,8,1024,64,causal,2,3,4000,4000,4000,1,1024,0.1,rev,host,date\n";
  const std::vector<BenchmarkRow> old_rows = parse_benchmark_csv(old, "old.csv");
  ASSERT_EQ(old_rows.size(), 1u);
  EXPECT_EQ(old_rows[0].key, rows[3].key);
  EXPECT_TRUE(std::isnan(old_rows[0].tokens_per_s));
  // Old samples files likewise.
  const std::vector<Sample> samples = parse_samples_csv(
      "variant,pass,dtype,batch,heads,seq_len,head_dim,mask,threads,repetition,time_ns\n"
      "flash,forward,float,1,8,1024,64,causal,2,0,4000\n",
      "old.samples.csv");
  EXPECT_EQ(samples[0].key, rows[3].key);
  // The same benchmark with and without grouped heads are two keys: no duplicate.
  EXPECT_NE(rows[1].key, rows[3].key);

  // Bad extra cells name their column.
  const std::string header = schema::header_line(schema::benchmark_columns);
  const std::string start = "flash,forward,float,1,8,1024,64,causal,2,3,4000,4000,4000,1,1024,0.1,rev,host,date,tuned,";
  for (const auto& [cells, expected] : std::vector<std::pair<std::string, std::string>>{
           {"3,1024,,nan,nan,nan", "in column 'heads_kv'"},
           {"16,1024,,nan,nan,nan", "in column 'heads_kv'"},
           {"8,-1,,nan,nan,nan", "in column 'seq_q'"},
           {"8,x,,nan,nan,nan", "not an integer in column 'seq_q'"},
           {"8,1024,,-1,nan,nan", "in column 'tokens_per_s'"},
           {"8,1024,,nan,inf,nan", "in column 'gbytes_per_s'"}}) {
    try {
      parse_benchmark_csv(header + start + cells + "\n", "bench.csv");
      ADD_FAILURE() << cells << " was accepted";
    } catch (const InputError& error) {
      EXPECT_TRUE(contains(error.what(), "bench.csv:2: ") && contains(error.what(), expected)) << error.what();
    }
  }
  // The writers refuse a key in non-canonical form (H_kv written as H).
  std::vector<BenchmarkRow> odd = {row_of(key("flash", 8, 0, ""), 1000)};
  EXPECT_THROW(format_benchmark_csv(odd), std::invalid_argument);
}

// JSON -> tidy rows: the rates come from the counters, query tokens default to B Nq.
TEST(FeatureKeys, TidyRowsCarryTheRates) {
  const std::string json = R"({"context": {"host_name": "h", "date": "d", "git_rev": "r"}, "benchmarks": [)"
      R"({"name": "attention/flash/forward/float/causal/B:1/H:8/Hkv:2/Nq:4/N:4096/d:64/T:2", "run_type": "iteration",)"
      R"( "real_time": 2, "time_unit": "ms", "flop": 1e6, "kv_bytes": 4194304, "copy_gbps": 8, "query_tokens": 4},)"
      R"({"name": "attention/flash/forward/float/causal/B:1/H:8/Nq:2/N:4096/d:64/T:2", "run_type": "iteration",)"
      R"( "real_time": 1, "time_unit": "ms", "flop": 1e6}]})";
  const GbenchRun run = parse_gbench_json(json, "run.json");
  const TidyBenchmarks tidy = tidy_benchmarks(run.samples, run.context);
  ASSERT_EQ(tidy.rows.size(), 2u);
  const BenchmarkRow& grouped = tidy.rows[0].key.heads_kv == 2 ? tidy.rows[0] : tidy.rows[1];
  const BenchmarkRow& plain = tidy.rows[0].key.heads_kv == 2 ? tidy.rows[1] : tidy.rows[0];
  EXPECT_DOUBLE_EQ(grouped.tokens_per_s, 4 / 2e-3);
  EXPECT_DOUBLE_EQ(grouped.gbytes_per_s, 4194304 / 2e6);
  EXPECT_DOUBLE_EQ(grouped.fraction_of_copy, 4194304 / 2e6 / 8);
  EXPECT_DOUBLE_EQ(plain.tokens_per_s, 2 / 1e-3);  // B Nq without the counter
  EXPECT_TRUE(std::isnan(plain.gbytes_per_s));
  EXPECT_TRUE(std::isnan(plain.fraction_of_copy));
  // A causal decoding case or a variable-length batch has no model FLOP: the counter must say.
  EXPECT_TRUE(std::isnan(model_flop(key("flash", 0, 4, ""))));
  EXPECT_TRUE(std::isnan(model_flop(key("flash", 0, 0, "mixed(seed=1)"))));
  BenchmarkKey none = key("flash", 0, 4, "");
  none.mask = "none";
  EXPECT_DOUBLE_EQ(model_flop(none), 4.0 * 8 * 4 * 1024 * 64);
  EXPECT_DOUBLE_EQ(model_flop(key("flash", 2, 0, "")), 4.0 * 8 * 1024 * 1024 * 64 / 2);  // every query head
}

TEST(FeatureKeys, ComparisonCsvCarriesTheExtraKey) {
  Comparison c;
  c.key = key("flash", 2, 16, "");
  const std::string text = format_comparison_csv({c});
  EXPECT_EQ(text.substr(0, text.find('\n') + 1), schema::header_line(schema::comparison_columns));
  EXPECT_TRUE(text.ends_with(",2,16,\n")) << text;
}

// The three sections, with their numbers, on a hand-written file.
TEST(FeatureSections, GroupedVariableLengthAndDecoding) {
  std::vector<BenchmarkRow> rows;
  // grouped-query at N = 1024 and the same variant's H_kv = H row
  rows.push_back(row_of(key("flash", 2, 0, ""), 2e6));
  rows.push_back(row_of(key("flash", 0, 0, ""), 2.5e6));
  rows.push_back(row_of(key("libtorch_sdpa", 2, 0, ""), 5e6));
  // variable-length
  BenchmarkRow varlen = row_of(key("flash", 0, 0, "mixed(seed=7)", 1024, 4), 1e6);
  varlen.tokens_per_s = 2.5e6;
  rows.push_back(varlen);
  rows.push_back(row_of(key("libtorch_composed", 0, 0, "mixed(seed=7)", 1024, 4), 3e6));
  // decoding over Nk = 1024, 2048, 4096: linear in Nk
  for (std::int64_t nk : {1024, 2048, 4096}) {
    BenchmarkRow ours = row_of(key("flash", 2, 1, "", nk), 1000.0 * static_cast<double>(nk) / 1024);
    ours.tokens_per_s = 1e9 / ours.median_ns;
    ours.gbytes_per_s = 2.0 * 2 * static_cast<double>(nk) * 64 * 4 / ours.median_ns;
    ours.fraction_of_copy = ours.gbytes_per_s / 10;
    rows.push_back(ours);
    rows.push_back(row_of(key("libtorch_sdpa", 2, 1, "", nk), 4000.0 * static_cast<double>(nk) / 1024));
  }
  const std::vector<FitRow> fits = complexity_fits(rows);
  const std::string md = feature_sections(rows, fits);
  EXPECT_TRUE(contains(md, "## Grouped-query attention")) << md;
  EXPECT_TRUE(contains(md, "| forward, float, causal, d=64, B=1, H=8, T=2, H_kv=2 | flash | 1024 | 2 ms | 1.00 | "
                           "2.50× vs libtorch_sdpa | 0.80× |"))
      << md;
  EXPECT_TRUE(contains(md, "## Variable-length batch")) << md;
  EXPECT_TRUE(contains(md, "| forward, float, causal, d=64, B=4, H=8, T=2, lengths mixed(seed=7) | flash | 1024 | 1 ms | "
                           "2.5e+06 | 1.00 | 3.00× vs libtorch_composed |"))
      << md;
  EXPECT_TRUE(contains(md, "## Decoding")) << md;
  // Nk = 2048: 2 us, 1e9 / 2000 tokens/s, 2 * 2 * 2048 * 64 * 4 B / 2000 ns = 1048.58 GB/s, fraction
  // 104.858 of the stand-in 10 GB/s, 4x
  EXPECT_TRUE(contains(md, "| forward, float, causal, d=64, B=1, H=8, T=2, H_kv=2, Nq=1 | flash | 2048 | 2 us | 5e+05 | "
                           "1048.58 | 104.858 | 4.00× vs libtorch_sdpa | 1.000 (R² 1.0000) |"))
      << md;
  // Without such rows, no section.
  EXPECT_EQ(feature_sections({row_of(key("flash", 0, 0, ""), 1e6)}, {}), "");
}

// summarize puts the sections in summary.md and draws the decoding series' bandwidth figure.
TEST(FeatureSections, SummarizeWritesThem) {
  std::vector<BenchmarkRow> rows;
  for (std::int64_t nk : {1024, 4096}) {
    BenchmarkRow r = row_of(key("flash", 2, 16, "", nk), 1000.0 * static_cast<double>(nk));
    r.tokens_per_s = 16e9 / r.median_ns;
    r.gbytes_per_s = 1.0;
    r.fraction_of_copy = 0.1;
    rows.push_back(r);
  }
  const TempDirectory dir("ped-feature-summary-");
  write_text(dir.path() / "bench.csv", format_benchmark_csv(rows));
  const SummaryResult result = write_summary({.bench_csv = dir.path() / "bench.csv", .verify_csv = std::nullopt,
                                              .out_dir = dir.path() / "out", .gnuplot = "/nonexistent/gnuplot"});
  const std::string md = read_text(dir.path() / "out" / "summary.md");
  EXPECT_TRUE(contains(md, "## Decoding")) << md;
  EXPECT_LT(md.find("## Decoding"), md.find("## Complexity fits"));
  EXPECT_TRUE(contains(md, "### forward, float, causal, d=64, B=1, H=8, T=2, H_kv=2, Nq=16")) << md;
  const std::string fits = read_text(dir.path() / "out" / "fits.csv");
  EXPECT_TRUE(contains(fits, ",heads_kv,seq_q,lengths\n")) << fits;
  EXPECT_TRUE(contains(fits, ",2,16,\n")) << fits;
}

}  // namespace
}  // namespace ped::reports
