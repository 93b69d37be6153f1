// End to end through the `report` executable: exit codes, files written, and nothing written on bad
// input.
#include "tests/test_files.hpp"

#include <gtest/gtest.h>

namespace ped::reports {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::file_count;
using testing::read_text;
using testing::run_report;
using testing::write_synthetic_run;
using testing::write_text;

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

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

TEST_F(ReportCommand, CompareWithFewRepetitionsSaysSoAndFailsUnlessAllowed) {
  const fs::path base = write_synthetic_run(scratch(), "base", 1.0, 3, 1);
  const fs::path slow = write_synthetic_run(scratch(), "slow", 2.0, 3, 2);
  CommandResult r = run_report(scratch(), {"compare", base.string(), slow.string()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("not gated (only 3 repetitions (need 9))"), std::string::npos) << r.out;
  EXPECT_EQ(first_line(r.err).rfind("report: compare: 3 of 3 benchmarks were not gated", 0), 0u) << r.err;
  r = run_report(scratch(), {"compare", base.string(), slow.string(), "--allow-ungated"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("3 not gated"), std::string::npos) << r.out;
}

TEST_F(ReportCommand, CompareWithoutSamplesIsLoudAndFailsUnlessAllowed) {
  // A tenfold slowdown, but NEW.samples.csv is missing: the gate cannot judge it and must not pass.
  const fs::path base = write_synthetic_run(scratch(), "base", 1.0, 9, 1);
  const fs::path slow = write_synthetic_run(scratch(), "slow", 10.0, 9, 2);
  fs::remove(samples_path_for(slow));
  CommandResult r = run_report(scratch(), {"compare", base.string(), slow.string(), "--csv", (scratch() / "c.csv").string()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(first_line(r.err).rfind("report: compare: 3 of 3 benchmarks were not gated (first: "
                                    "attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:2: no raw samples in new)",
                                    0),
            0u)
      << r.err;
  EXPECT_NE(r.err.find("--allow-ungated"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(scratch() / "c.csv"));
  r = run_report(scratch(), {"compare", base.string(), slow.string(), "--allow-ungated"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("not gated (no raw samples in new)"), std::string::npos) << r.out;
  // Nothing matched at all: nothing was gated either.
  std::string other = read_text(slow);
  for (std::size_t at = other.find("flash"); at != std::string::npos; at = other.find("flash")) other.replace(at, 5, "blocked");
  for (std::size_t at = other.find("naive"); at != std::string::npos; at = other.find("naive")) other.replace(at, 5, "sparse");
  write_text(scratch() / "other.csv", other);
  r = run_report(scratch(), {"compare", base.string(), (scratch() / "other.csv").string()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
}

TEST_F(ReportCommand, CompareRefusesDuplicatedSamples) {
  // 3 repetitions per side, 10% slower: not gated. The same rows written three times must not turn
  // into 9 repetitions and a "regressed".
  const fs::path base = write_synthetic_run(scratch(), "base", 1.0, 3, 1);
  const fs::path slow = write_synthetic_run(scratch(), "slow", 1.1, 3, 2);
  for (const fs::path& csv : {base, slow}) {
    const std::string samples = read_text(samples_path_for(csv));
    const std::string rows = samples.substr(samples.find('\n') + 1);
    write_text(samples_path_for(csv), samples + rows + rows);
  }
  const CommandResult r = run_report(scratch(), {"compare", base.string(), slow.string()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(first_line(r.err).rfind("report: bad input: " + samples_path_for(base).string() +
                                        ":11: repetition 0 of attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:2 "
                                        "appears twice (first on line 2)",
                                    0),
            0u)
      << r.err;
}

TEST_F(ReportCommand, NulByteIsBadInputInCompareAndSummarize) {
  const fs::path base = write_synthetic_run(scratch(), "base", 1.0, 9, 1);
  const fs::path nul = write_synthetic_run(scratch(), "nul", 1.0, 9, 2);
  std::string text = read_text(nul);
  text.insert(text.find('\n', text.find('\n') + 1) + 1, 1, '\0');  // first byte of line 3
  write_text(nul, text);
  CommandResult r = run_report(scratch(), {"compare", base.string(), nul.string(), "--allow-ungated"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(first_line(r.err).find(nul.string() + ":3: NUL byte at byte 1 of the line"), std::string::npos) << r.err;
  r = run_report(scratch(), {"summarize", "--bench", nul.string(), "--out", (scratch() / "out").string()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(first_line(r.err).find(nul.string() + ":3: NUL byte"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(scratch() / "out"));
}

TEST_F(ReportCommand, SummarizeRefusesAVerifyRowWhosePassedContradictsItsNumbers) {
  const fs::path bench = write_synthetic_run(scratch(), "bench", 1.0, 9, 1);
  const std::string header =
      "op,variant,dtype,shape,mask,reference,quantity,max_abs_err,max_rel_err,norm_rel_err,tolerance,passed,seed\n";
  const std::string good = "attention,flash,float,s,causal,libtorch,dq,1e-6,2e-6,3e-7,1e-5,true,1\n";
  const struct {
    const char* row;
    const char* expected;
  } cases[] = {
      {"attention,flash,float,s,causal,libtorch,dk,nan,nan,nan,1e-5,true,1\n",
       ":3: passed is true, but norm_rel_err nan is not <= tolerance 1e-05"},
      {"attention,flash,double,s,causal,finite_difference,dk,0.5,0.5,0.5,1e-08,true,1\n",
       ":3: passed is true, but norm_rel_err 0.5 is not <= tolerance 1e-08"},
      {"attention,flash,float,s,causal,libtorch,dk,1,1,1,-1e-5,false,1\n",
       ":3: tolerance must be a finite number > 0 in column 'tolerance': '-1e-5'"},
  };
  for (const auto& c : cases) {
    const fs::path verify = scratch() / "verify.csv";
    write_text(verify, header + good + c.row);
    const fs::path out = scratch() / "out";
    const CommandResult r =
        run_report(scratch(), {"summarize", "--bench", bench.string(), "--verify", verify.string(), "--out", out.string()});
    EXPECT_EQ(r.exit_code, 2) << c.row << r.out << r.err;
    EXPECT_EQ(first_line(r.err).rfind("report: bad input: " + verify.string() + c.expected, 0), 0u) << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
}

TEST_F(ReportCommand, CompareBadInputExitsTwoNamingFileAndLine) {
  const fs::path base = write_synthetic_run(scratch(), "base", 1.0, 9, 1);
  CommandResult r = run_report(scratch(), {"compare", base.string(), (scratch() / "missing.csv").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing.csv"), std::string::npos) << r.err;

  std::string samples = read_text(samples_path_for(base));
  // time_ns (the 11th cell) of the last line: "x<time>", not a number
  std::size_t at = samples.rfind('\n', samples.size() - 2);
  ASSERT_NE(at, std::string::npos) << samples;
  for (int comma = 0; comma < 10; ++comma) {
    at = samples.find(',', at + 1);
    ASSERT_NE(at, std::string::npos) << samples;
  }
  samples.insert(at + 1, "x");
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

TEST_F(ReportCommand, ConvertRefusesTheSameRunTwice) {
  const fs::path json = scratch() / "run.json";
  write_text(json, R"({"context": {"host_name": "h", "date": "d"}, "benchmarks": [
    {"name": "attention/flash/forward/float/causal/B:1/H:2/N:128/d:16/T:1", "run_type": "iteration",
     "repetition_index": 0, "threads": 1, "real_time": 10.0, "time_unit": "us"}]})");
  fs::copy_file(json, scratch() / "copy.json");
  const fs::path csv = scratch() / "run.csv";
  CommandResult r = run_report(scratch(), {"convert", "--json", json.string(), "--json", json.string(), "--out", csv.string()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(first_line(r.err), "report: bad input: report convert: " + json.string() + " is given twice (--json 1 and 2)") << r.err;
  r = run_report(scratch(), {"convert", "--json", json.string(), "--json", (scratch() / "copy.json").string(), "--out",
                             csv.string()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(first_line(r.err), "report: bad input: report convert: " + (scratch() / "copy.json").string() +
                                   " holds the same bytes as " + json.string() + " (the same run given twice)")
      << r.err;
  EXPECT_FALSE(fs::exists(csv));
  EXPECT_FALSE(fs::exists(samples_path_for(csv)));
}

TEST_F(ReportCommand, ConvertWritesNothingItsReadersWouldRefuse) {
  const fs::path csv = scratch() / "run.csv";
  const std::string run = R"("benchmarks": [
    {"name": "attention/flash/forward/float/causal/B:1/H:2/N:128/d:16/T:1", "run_type": "iteration",
     "repetition_index": 0, "threads": 1, "real_time": 10.0, "time_unit": "us"}]})";
  const struct {
    const char* name;
    std::string text;
    std::string expected;
  } cases[] = {
      {"newline.json", R"({"context": {"host_name": "h\nx"}, )" + run,
       "newline.json: context.host_name 'h\\x0ax' holds a control character"},
      {"huge.json", R"({"context": {}, "benchmarks": [{"name": "attention/flash/forward/float/causal/B:1/H:2/d:16/T:1",
        "run_type": "iteration", "real_time": 1, "seq_len": 1e300}]})",
       "huge.json: benchmarks[0]: counter seq_len 1e+300"},
  };
  for (const auto& c : cases) {
    const fs::path json = scratch() / c.name;
    write_text(json, c.text);
    const CommandResult r = run_report(scratch(), {"convert", "--json", json.string(), "--out", csv.string()});
    EXPECT_EQ(r.exit_code, 2) << c.name << r.out << r.err;
    EXPECT_EQ(first_line(r.err).rfind("report: bad input: " + (scratch() / c.expected).string(), 0), 0u) << r.err;
    EXPECT_FALSE(fs::exists(csv)) << c.name;
  }
}

TEST_F(ReportCommand, ConvertPutsTheErrorOnTheFirstLine) {
  // The first file has a skipped run (a note), the second is broken: the error comes first.
  const fs::path notes = scratch() / "notes.json";
  write_text(notes, R"({"context": {"host_name": "h"}, "benchmarks": [
    {"name": "attention/naive/forward/float/none/B:1/H:8/N:65536/d:64/T:2", "run_type": "iteration", "real_time": 0,
     "error_occurred": true, "error_message": "needs 128 GiB"},
    {"name": "gemm/sgemm/T:2", "run_type": "iteration", "real_time": 1},
    {"name": "attention/flash/forward/float/causal/B:1/H:2/N:128/d:16/T:1", "run_type": "iteration", "real_time": 1}]})");
  const fs::path broken = scratch() / "broken.json";
  write_text(broken, R"({"benchmarks": [{"name": "attention/flash/forward/float/causal/B:1/H:2/N:128/d:16/T:1",
    "run_type": "iteration", "real_time": -1}]})");
  const fs::path csv = scratch() / "run.csv";
  CommandResult r = run_report(scratch(), {"convert", "--json", notes.string(), "--json", broken.string(), "--out", csv.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(first_line(r.err).rfind("report: bad input: " + broken.string() + ": benchmarks[0]: ", 0), 0u) << r.err;
  // On success the notes still come, after the files are written.
  r = run_report(scratch(), {"convert", "--json", notes.string(), "--out", csv.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("skipped attention/naive/forward/float/none/B:1/H:8/N:65536/d:64/T:2: needs 128 GiB"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(fs::exists(csv));
}

TEST_F(ReportCommand, UsageErrorsExitTwo) {
  EXPECT_EQ(run_report(scratch(), {}).exit_code, 2);
  EXPECT_EQ(run_report(scratch(), {"compare", "only-one.csv"}).exit_code, 2);
  EXPECT_EQ(run_report(scratch(), {"--help"}).exit_code, 0);
}

}  // namespace
}  // namespace ped::reports
