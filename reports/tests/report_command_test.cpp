// End to end through the `report` executable: exit codes, files written, and nothing written on bad
// input.
#include "tests/test_files.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>

namespace ped::reports {
namespace {

namespace fs = std::filesystem;
using testing::file_count;
using testing::read_text;
using testing::write_synthetic_run;
using testing::write_text;

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `report ARGS...` with stdout and stderr captured in `scratch`.
CommandResult run_report(const fs::path& scratch, const std::vector<std::string>& args) {
  std::string command = shell_quote(PED_REPORT_EXECUTABLE);
  for (const std::string& arg : args) {
    command += ' ';  // appended apart: GCC 12 warns falsely (-Wrestrict) on " " + std::string
    command += shell_quote(arg);
  }
  const fs::path out = scratch / "report.stdout";
  const fs::path err = scratch / "report.stderr";
  command += " > " + shell_quote(out.string()) + " 2> " + shell_quote(err.string());
  const int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_text(out);
  result.err = read_text(err);
  return result;
}

class ReportCommand : public ::testing::Test {
 protected:
  TempDirectory scratch_{"ped-report-test-"};
  fs::path scratch() const { return scratch_.path(); }
};

TEST_F(ReportCommand, CompareAACleanAndInjectedSlowdownRegresses) {
  const fs::path base = write_synthetic_run(scratch(), "base", 1.0, 9, 1);
  const fs::path same = write_synthetic_run(scratch(), "same", 1.0, 9, 2);
  const fs::path slow = write_synthetic_run(scratch(), "slow", 1.25, 9, 3);

  CommandResult r = run_report(scratch(), {"compare", base.string(), same.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("0 regressed"), std::string::npos) << r.out;

  r = run_report(scratch(), {"compare", base.string(), slow.string(), "--csv", (scratch() / "cmp.csv").string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("REGRESSED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3 regressed"), std::string::npos) << r.out;
  EXPECT_NE(read_text(scratch() / "cmp.csv").find(",regressed,"), std::string::npos);

  // A threshold above the slowdown lets it through.
  r = run_report(scratch(), {"compare", base.string(), slow.string(), "--threshold", "0.5"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_F(ReportCommand, CompareWithFewRepetitionsSaysSoAndDoesNotGate) {
  const fs::path base = write_synthetic_run(scratch(), "base", 1.0, 3, 1);
  const fs::path slow = write_synthetic_run(scratch(), "slow", 2.0, 3, 2);
  const CommandResult r = run_report(scratch(), {"compare", base.string(), slow.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("not gated (only 3 repetitions (need 9))"), std::string::npos) << r.out;
}

TEST_F(ReportCommand, CompareBadInputExitsTwoNamingFileAndLine) {
  const fs::path base = write_synthetic_run(scratch(), "base", 1.0, 9, 1);
  CommandResult r = run_report(scratch(), {"compare", base.string(), (scratch() / "missing.csv").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing.csv"), std::string::npos) << r.err;

  std::string samples = read_text(samples_path_for(base));
  samples.replace(samples.rfind(','), 1, ",x");  // last cell of the last line: "x<time>", not a number
  const fs::path broken = scratch() / "broken.csv";
  fs::copy_file(base, broken);
  write_text(samples_path_for(broken), samples);
  r = run_report(scratch(), {"compare", base.string(), broken.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("broken.samples.csv:28: not a number in column 'time_ns'"), std::string::npos) << r.err;
}

TEST_F(ReportCommand, SummarizeWritesReportFitsAndPlotsOrSaysWhyNot) {
  const fs::path bench = write_synthetic_run(scratch(), "bench", 1.0, 9, 1);
  const fs::path verify = scratch() / "verify.csv";
  write_text(verify,
             "op,variant,dtype,shape,mask,reference,quantity,max_abs_err,max_rel_err,norm_rel_err,tolerance,passed,seed\n"
             "attention,flash,float,\"[1,8,64,16]\",causal,libtorch,dq,1e-6,2e-6,3e-7,1e-5,true,1\n"
             "attention,flash,float,\"[1,8,64,16]\",causal,libtorch,dk,1e-3,2e-3,3e-4,1e-5,false,1\n");
  const fs::path out = scratch() / "report";
  // A gnuplot that does not exist: the summary is still written and says the plots were skipped.
  CommandResult r = run_report(scratch(), {"summarize", "--bench", bench.string(), "--verify", verify.string(), "--out",
                                           out.string(), "--gnuplot", "/nonexistent/gnuplot"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string summary = read_text(out / "summary.md");
  EXPECT_NE(summary.find("Plots skipped: gnuplot not available"), std::string::npos) << summary;
  EXPECT_NE(summary.find("| attention | flash | float | libtorch | 2 | 1 ❌ |"), std::string::npos) << summary;
  EXPECT_NE(read_text(out / "fits.csv").find("fit,forward,float,causal,64,1,8,2,flash,,time_ns,"), std::string::npos);
  EXPECT_EQ(file_count(out), 2u);  // summary.md, fits.csv: no temp files left

  if (std::system("command -v gnuplot > /dev/null 2>&1") == 0) {
    r = run_report(scratch(), {"summarize", "--bench", bench.string(), "--out", out.string()});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(fs::file_size(out / "time_forward_float_causal_d64_B1_H8_T2.png") > 0);
    EXPECT_NE(read_text(out / "summary.md").find("](time_forward_float_causal_d64_B1_H8_T2.png)"), std::string::npos);
  }
}

TEST_F(ReportCommand, SummarizeBadInputExitsTwoAndWritesNothing) {
  const std::string header =
      "variant,pass,dtype,batch,heads,seq_len,head_dim,mask,threads,repetitions,median_ns,min_ns,max_ns,gflops,"
      "peak_bytes,fraction_of_gemm,git_rev,host,date\n";
  const std::string row = "flash,forward,float,1,8,1024,64,causal,2,9,1000,900,1100,1,1,1,r,h,d\n";
  std::string missing_column = header;
  missing_column.replace(missing_column.find("gflops"), 6, "glops");
  std::string non_numeric = row;
  non_numeric.replace(non_numeric.find(",900,"), 5, ",9o0,");
  const struct {
    const char* name;
    std::string text;
    std::string expected;  // after the file name
  } cases[] = {
      {"missing_column", missing_column + row, ":1: header lacks column(s) 'gflops'"},
      {"non_numeric", header + row + non_numeric, ":3: not a number in column 'min_ns': '9o0'"},
      {"ragged", header + row + "flash,forward\n", ":3: ragged row"},
      {"empty", "", ":1: empty file"},
  };
  for (const auto& c : cases) {
    const fs::path bench = scratch() / (std::string(c.name) + ".csv");
    write_text(bench, c.text);
    const fs::path out = scratch() / (std::string(c.name) + "_out");
    fs::create_directory(out);
    const CommandResult r = run_report(scratch(), {"summarize", "--bench", bench.string(), "--out", out.string()});
    EXPECT_EQ(r.exit_code, 2) << c.name;
    EXPECT_NE(r.err.find(bench.string() + c.expected), std::string::npos) << c.name << ": " << r.err;
    EXPECT_EQ(file_count(out), 0u) << c.name;
  }
  // A bad verify CSV is found before anything is written, too; and a new out dir is not even created.
  const fs::path good = write_synthetic_run(scratch(), "good", 1.0, 9, 1);
  const fs::path verify = scratch() / "verify.csv";
  write_text(verify, "op,variant\nattention,flash\n");
  const CommandResult r = run_report(scratch(), {"summarize", "--bench", good.string(), "--verify", verify.string(),
                                                 "--out", (scratch() / "never").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("verify.csv:1: header lacks column(s) 'dtype'"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(scratch() / "never"));
}

TEST_F(ReportCommand, ConvertJsonToTidyCsv) {
  const fs::path json = scratch() / "run.json";
  write_text(json, R"({"context": {"host_name": "h", "date": "d"}, "benchmarks": [
    {"name": "attention/flash/forward/float/causal/B:1/H:2/N:128/d:16/T:1", "run_type": "iteration",
     "repetition_index": 0, "threads": 1, "real_time": 10.0, "time_unit": "us"},
    {"name": "attention/flash/forward/float/causal/B:1/H:2/N:128/d:16/T:1", "run_type": "iteration",
     "repetition_index": 1, "threads": 1, "real_time": 12.0, "time_unit": "us"}]})");
  const fs::path csv = scratch() / "run.csv";
  CommandResult r = run_report(scratch(), {"convert", "--json", json.string(), "--out", csv.string(), "--git-rev", "abc"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::vector<BenchmarkRow> rows = read_benchmark_csv(csv);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_DOUBLE_EQ(rows[0].median_ns, 11000.0);
  EXPECT_EQ(rows[0].git_rev, "abc");
  EXPECT_EQ(read_samples_csv(samples_path_for(csv)).size(), 2u);

  write_text(json, "{\"benchmarks\": [}");
  r = run_report(scratch(), {"convert", "--json", json.string(), "--out", (scratch() / "bad.csv").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("run.json: not valid JSON"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(scratch() / "bad.csv"));
}

TEST_F(ReportCommand, UsageErrorsExitTwo) {
  EXPECT_EQ(run_report(scratch(), {}).exit_code, 2);
  EXPECT_EQ(run_report(scratch(), {"compare", "only-one.csv"}).exit_code, 2);
  EXPECT_EQ(run_report(scratch(), {"--help"}).exit_code, 0);
}

}  // namespace
}  // namespace ped::reports
