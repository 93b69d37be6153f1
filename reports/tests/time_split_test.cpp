// Where the time goes: bench's phase_<name> counters -> tidy phase rows (gbench_json), the
// BENCH.phases.csv file (csv_io, its schema in core/schemas.hpp), `report convert` writing it and
// `report summarize` showing its "Where the time goes" section.
#include "core/errors.hpp"
#include "core/schemas.hpp"
#include "reports/summary.hpp"
#include "tests/test_files.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>

namespace ped::reports {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::write_text;

// Three repetitions of one flash benchmark with phase counters, and one naive run without any.
const char* const phases_json = R"({"context": {"host_name": "h", "date": "d", "git_rev": "r"}, "benchmarks": [
  {"name": "attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:2", "run_type": "iteration",
   "repetition_index": 0, "real_time": 2.0, "time_unit": "ms",
   "phase_score_gemm": 0.4, "phase_softmax": 0.2, "phase_value_gemm": 0.3, "phase_other": 0.1},
  {"name": "attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:2", "run_type": "iteration",
   "repetition_index": 1, "real_time": 2.0, "time_unit": "ms",
   "phase_score_gemm": 0.5, "phase_softmax": 0.1, "phase_value_gemm": 0.3, "phase_other": 0.1},
  {"name": "attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:2", "run_type": "iteration",
   "repetition_index": 2, "real_time": 2.0, "time_unit": "ms",
   "phase_score_gemm": 0.3, "phase_softmax": 0.3, "phase_value_gemm": 0.2, "phase_other": 0.2},
  {"name": "attention/naive/forward/float/causal/B:1/H:8/N:1024/d:64/T:2", "run_type": "iteration",
   "repetition_index": 0, "real_time": 9.0, "time_unit": "ms"}]})";

TEST(TimeSplit, PhaseCountersBecomeMedianRowsPerBenchmark) {
  const GbenchRun run = parse_gbench_json(phases_json, "run.json");
  ASSERT_EQ(run.samples.size(), 4u);
  EXPECT_EQ(run.samples[0].phases.size(), 4u);
  EXPECT_TRUE(run.samples[3].phases.empty());
  const TidyBenchmarks tidy = tidy_benchmarks(run.samples, run.context);
  ASSERT_EQ(tidy.phases.size(), 4u);  // flash only, sorted by phase name
  const BenchmarkKey flash{"flash", "forward", "float", 1, 8, 1024, 64, "causal", 2};
  const std::pair<const char*, double> expected[] = {
      {"other", 0.1}, {"score_gemm", 0.4}, {"softmax", 0.2}, {"value_gemm", 0.3}};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(tidy.phases[i].key, flash);
    EXPECT_EQ(tidy.phases[i].phase, expected[i].first);
    EXPECT_DOUBLE_EQ(tidy.phases[i].fraction, expected[i].second);
  }
}

TEST(TimeSplit, RefusesPhaseCountersOutsideTheirMeaning) {
  const std::string head = R"({"benchmarks": [{"name": "attention/flash/forward/float/none/B:1/H:1/N:8/d:8/T:1",
    "run_type": "iteration", "real_time": 1.0, )";
  const std::pair<const char*, const char*> cases[] = {
      {R"("phase_softmax": 1.5)", "counter phase_softmax 1.5 is not a number in [0, 1]"},
      {R"("phase_softmax": -0.1)", "counter phase_softmax -0.1 is not a number in [0, 1]"},
      {R"("phase_softmax": "x")", "counter phase_softmax is not a number"},
      {R"("phase_Soft": 0.5)", "counter phase_Soft is not named phase_[a-z_]+"},
      {R"("phase_": 0.5)", "counter phase_ is not named phase_[a-z_]+"},
  };
  for (const auto& [field, expected] : cases) {
    try {
      parse_gbench_json(head + field + "}]}", "run.json");
      ADD_FAILURE() << field << " was accepted";
    } catch (const InputError& error) {
      EXPECT_NE(std::string(error.what()).find(expected), std::string::npos) << error.what();
    }
  }
}

TEST(TimeSplit, PhasesCsvRoundTripsAndMayBeEmpty) {
  EXPECT_EQ(format_phases_csv({}), schema::header_line(schema::phases_columns));
  EXPECT_TRUE(parse_phases_csv(format_phases_csv({}), "empty.phases.csv").empty());
  const std::vector<PhaseRow> rows = {
      {{"flash", "forward_backward", "float", 1, 8, 4096, 128, "sliding_window(left=256,right=0)", 2}, "dq_gemm",
       0.123456789012345, 0},
      {{"flash", "forward_backward", "float", 1, 8, 4096, 128, "sliding_window(left=256,right=0)", 2}, "other", 0.0, 0},
      {{"sparse", "backward", "float", 2, 4, 512, 64, "causal", 1}, "dominated", 1.0, 0}};
  const std::vector<PhaseRow> back = parse_phases_csv(format_phases_csv(rows), "run.phases.csv");
  ASSERT_EQ(back.size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(back[i].key, rows[i].key);
    EXPECT_EQ(back[i].phase, rows[i].phase);
    EXPECT_EQ(back[i].fraction, rows[i].fraction);  // bitwise: format_number reads back exactly
    EXPECT_EQ(back[i].line, i + 2);
  }
  EXPECT_EQ(phases_path_for(fs::path("out") / "bench.csv"), fs::path("out") / "bench.phases.csv");
  EXPECT_EQ(phases_path_for(fs::path("run")), fs::path("run.phases.csv"));
}

TEST(TimeSplit, PhasesCsvRefusesBadRows) {
  const std::string header = schema::header_line(schema::phases_columns);
  const std::string key = "flash,forward,float,1,8,1024,64,causal,2,";
  const std::string extra = ",8,1024,\n";  // heads_kv, seq_q, lengths
  const std::pair<std::string, const char*> cases[] = {
      {key + "softmax,1.5" + extra, ":2: fraction must be a finite number in [0, 1]"},
      {key + "softmax,nan" + extra, ":2: fraction must be a finite number in [0, 1]"},
      {key + "Softmax,0.5" + extra, "is not [a-z_]+"},
      {key + "softmax,0.5" + extra + key + "softmax,0.25" + extra, ":3: phase softmax of attention/flash/forward/float/causal/"},
      {"flash,sideways,float,1,8,1024,64,causal,2,softmax,0.5" + extra, ":2: pass is not forward|backward|forward_backward"},
      {key + "softmax,0.5,3,1024,\n", ":2: heads_kv 3 is not in [1, heads 8) dividing heads"},
  };
  for (const auto& [body, expected] : cases) {
    try {
      parse_phases_csv(header + body, "run.phases.csv");
      ADD_FAILURE() << body << " was accepted";
    } catch (const InputError& error) {
      EXPECT_NE(std::string(error.what()).find(expected), std::string::npos) << error.what();
    }
  }
  PhaseRow bad{{"flash", "forward", "float", 1, 8, 1024, 64, "causal", 2}, "softmax", 2.0, 0};
  EXPECT_THROW(format_phases_csv({bad}), std::invalid_argument);
  bad.fraction = 0.5;
  EXPECT_THROW(format_phases_csv({bad, bad}), std::invalid_argument);
}

TEST(TimeSplit, SectionListsEachSeriesWithItsPhasesInKernelOrder) {
  EXPECT_EQ(time_split_section({}), "");
  const BenchmarkKey flash{"flash", "forward", "float", 1, 8, 1024, 64, "causal", 2};
  BenchmarkKey blocked = flash;
  blocked.variant = "blocked";
  const std::vector<PhaseRow> rows = {{flash, "other", 0.1, 0},      {flash, "score_gemm", 0.4, 0},
                                      {flash, "softmax", 0.25, 0},   {flash, "value_gemm", 0.25, 0},
                                      {flash, "dominated", 0.0, 0},  {blocked, "score_gemm", 0.5, 0},
                                      {blocked, "other", 0.5, 0}};
  const std::string md = time_split_section(rows);
  EXPECT_NE(md.find("## Where the time goes"), std::string::npos) << md;
  EXPECT_NE(md.find("### forward, float, causal, d=64, B=1, H=8, T=2"), std::string::npos) << md;
  // dominated is zero throughout, so it has no column; other comes last.
  EXPECT_NE(md.find("| variant | N | score_gemm | softmax | value_gemm | other |"), std::string::npos) << md;
  EXPECT_NE(md.find("| blocked | 1024 | 50.0 | – | – | 50.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| flash | 1024 | 40.0 | 25.0 | 25.0 | 10.0 |"), std::string::npos) << md;
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// `report ARGS...`, its exit code; stdout and stderr into `scratch`.
int run_report(const fs::path& scratch, const std::vector<std::string>& args) {
  std::string command = shell_quote(PED_REPORT_EXECUTABLE);
  for (const std::string& arg : args) {
    command += ' ';
    command += shell_quote(arg);
  }
  command += " > " + shell_quote((scratch / "report.stdout").string()) + " 2> " +
             shell_quote((scratch / "report.stderr").string());
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(TimeSplit, ConvertWritesThePhasesFileAndSummarizeShowsIt) {
  const TempDirectory scratch("ped-time-split-test-");
  const fs::path json = scratch.path() / "run.json";
  write_text(json, phases_json);
  const fs::path csv = scratch.path() / "run.csv";
  ASSERT_EQ(run_report(scratch.path(), {"convert", "--json", json.string(), "--out", csv.string()}), 0)
      << read_text(scratch.path() / "report.stderr");
  EXPECT_NE(read_text(scratch.path() / "report.stdout").find("run.phases.csv (4 phase fractions)"), std::string::npos);
  // bench.csv keeps its schema; the split is in its own file.
  EXPECT_EQ(read_text(csv).substr(0, read_text(csv).find('\n') + 1), schema::header_line(schema::benchmark_columns));
  const std::vector<PhaseRow> phases = read_phases_csv(phases_path_for(csv));
  ASSERT_EQ(phases.size(), 4u);
  EXPECT_EQ(phases[1].phase, "score_gemm");
  EXPECT_DOUBLE_EQ(phases[1].fraction, 0.4);

  const fs::path out = scratch.path() / "report";
  ASSERT_EQ(run_report(scratch.path(), {"summarize", "--bench", csv.string(), "--out", out.string(), "--gnuplot",
                                        "/nonexistent/gnuplot"}),
            0)
      << read_text(scratch.path() / "report.stderr");
  const std::string summary = read_text(out / "summary.md");
  EXPECT_NE(summary.find("## Where the time goes"), std::string::npos) << summary;
  EXPECT_NE(summary.find("| flash | 1024 | 40.0 | 20.0 | 30.0 | 10.0 |"), std::string::npos) << summary;

  // A run without phase counters: a phases file with the header only, and no section.
  const fs::path plain_json = scratch.path() / "plain.json";
  write_text(plain_json, R"({"benchmarks": [{"name": "attention/naive/forward/float/none/B:1/H:1/N:8/d:8/T:1",
    "run_type": "iteration", "real_time": 1.0}]})");
  const fs::path plain = scratch.path() / "plain.csv";
  ASSERT_EQ(run_report(scratch.path(), {"convert", "--json", plain_json.string(), "--out", plain.string()}), 0);
  EXPECT_EQ(read_text(phases_path_for(plain)), schema::header_line(schema::phases_columns));
  ASSERT_EQ(run_report(scratch.path(), {"summarize", "--bench", plain.string(), "--out", out.string(), "--gnuplot",
                                        "/nonexistent/gnuplot"}),
            0);
  EXPECT_EQ(read_text(out / "summary.md").find("Where the time goes"), std::string::npos);

  // A broken phases file is bad input like any other: exit 2, nothing written.
  write_text(phases_path_for(plain), schema::header_line(schema::phases_columns) +
                                         "naive,forward,float,1,1,8,8,none,1,softmax,7\n");
  const fs::path never = scratch.path() / "never";
  EXPECT_EQ(run_report(scratch.path(), {"summarize", "--bench", plain.string(), "--out", never.string()}), 2);
  EXPECT_NE(read_text(scratch.path() / "report.stderr").find("plain.phases.csv:2: "), std::string::npos)
      << read_text(scratch.path() / "report.stderr");
  EXPECT_FALSE(fs::exists(never));
}

}  // namespace
}  // namespace ped::reports
