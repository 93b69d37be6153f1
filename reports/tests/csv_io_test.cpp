// Reading the tidy CSVs: good files round-trip; every kind of bad file gives an InputError that
// names the file and the line.
#include "core/atomic_file.hpp"
#include "core/csv.hpp"
#include "core/mask.hpp"
#include "core/schemas.hpp"
#include "reports/compare.hpp"
#include "reports/csv_io.hpp"
#include "core/errors.hpp"
#include "tests/test_files.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace ped::reports {
namespace {

namespace fs = std::filesystem;
using testing::file_count;
using testing::read_text;
using testing::write_text;

const std::string bench_header =
    "variant,pass,dtype,batch,heads,seq_len,head_dim,mask,threads,repetitions,median_ns,min_ns,max_ns,gflops,"
    "peak_bytes,fraction_of_gemm,git_rev,host,date\n";
const std::string bench_row = "flash,forward,float,1,8,1024,64,causal,4,9,1000,900,1100,12.5,4096,0.25,abc,host1,2025-01-01\n";

// The message of the InputError that reading `text` as a benchmark CSV throws ("" if none).
std::string bench_error(const std::string& text, fs::path* file_out = nullptr) {
  TempDirectory dir("ped-csv-test-");
  const fs::path file = dir.path() / "bench.csv";
  write_text(file, text);
  if (file_out) *file_out = file;
  try {
    read_benchmark_csv(file);
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}

TEST(ReadBenchmarkCsv, ReadsColumnsByNameInAnyOrderAndIgnoresExtras) {
  TempDirectory dir("ped-csv-test-");
  const fs::path file = dir.path() / "bench.csv";
  write_text(file,
             "extra,date,host,git_rev,fraction_of_gemm,peak_bytes,gflops,max_ns,min_ns,median_ns,repetitions,threads,"
             "mask,head_dim,seq_len,heads,batch,dtype,pass,variant\n"
             "x,2025-01-01,host1,abc,nan,4096,12.5,1100,900,1000.5,9,4,\"window,256\",64,1024,8,1,float,forward,flash\n"
             "\n# a comment line\n");
  const std::vector<BenchmarkRow> rows = read_benchmark_csv(file);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].key.variant, "flash");
  EXPECT_EQ(rows[0].key.mask, "window,256");
  EXPECT_EQ(rows[0].key.seq_len, 1024);
  EXPECT_DOUBLE_EQ(rows[0].median_ns, 1000.5);
  EXPECT_TRUE(std::isnan(rows[0].fraction_of_gemm));
  EXPECT_EQ(rows[0].line, 2u);
}

TEST(ReadBenchmarkCsv, RoundTripsThroughFormat) {
  TempDirectory dir("ped-csv-test-");
  const fs::path file = dir.path() / "bench.csv";
  write_text(file, bench_header + bench_row);
  std::vector<BenchmarkRow> rows = read_benchmark_csv(file);
  rows[0].key.mask = "odd, \"quoted\" mask";
  rows[0].median_ns = std::nextafter(1000.0, 2000.0);  // a double that needs all 17 digits
  write_file_atomically(file, format_benchmark_csv(rows));
  const std::vector<BenchmarkRow> back = read_benchmark_csv(file);
  EXPECT_EQ(back[0].key, rows[0].key);
  EXPECT_EQ(back[0].median_ns, rows[0].median_ns);
}

TEST(ReadBenchmarkCsv, MissingFileNamesTheFile) {
  try {
    read_benchmark_csv("/nonexistent/dir/bench.csv");
    FAIL() << "no error";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent/dir/bench.csv"), std::string::npos) << error.what();
  }
}

TEST(ReadBenchmarkCsv, MissingColumnNamesFileLineAndColumn) {
  std::string header = bench_header;
  header.replace(header.find("median_ns"), 9, "medianns");
  fs::path file;
  const std::string error = bench_error(header + bench_row, &file);
  EXPECT_NE(error.find(file.string() + ":1:"), std::string::npos) << error;
  EXPECT_NE(error.find("'median_ns'"), std::string::npos) << error;
}

TEST(ReadBenchmarkCsv, NonNumericCellNamesLineColumnAndValue) {
  std::string bad = bench_row;
  bad.replace(bad.find(",1000,"), 6, ",fast,");
  fs::path file;
  const std::string error = bench_error(bench_header + bench_row + bad, &file);
  EXPECT_NE(error.find(file.string() + ":3:"), std::string::npos) << error;
  EXPECT_NE(error.find("median_ns"), std::string::npos) << error;
  EXPECT_NE(error.find("'fast'"), std::string::npos) << error;
}

TEST(ReadBenchmarkCsv, EmptyNumericCellIsAnError) {
  std::string bad = bench_row;
  bad.replace(bad.find(",12.5,"), 6, ",,");
  EXPECT_NE(bench_error(bench_header + bad).find(":2: not a number in column 'gflops'"), std::string::npos);
}

TEST(ReadBenchmarkCsv, RaggedRowNamesTheLine) {
  const std::string short_row = "flash,forward,float,1,8,1024\n";
  fs::path file;
  std::string error = bench_error(bench_header + bench_row + short_row, &file);
  EXPECT_NE(error.find(file.string() + ":3: ragged row"), std::string::npos) << error;
  error = bench_error(bench_header + "extra," + bench_row, &file);
  EXPECT_NE(error.find(file.string() + ":2: ragged row"), std::string::npos) << error;
}

TEST(ReadBenchmarkCsv, EmptyFileAndHeaderOnly) {
  fs::path file;
  std::string error = bench_error("", &file);
  EXPECT_NE(error.find(file.string() + ":1: empty file"), std::string::npos) << error;
  error = bench_error(bench_header, &file);
  EXPECT_NE(error.find(file.string() + ":2: no data rows"), std::string::npos) << error;
}

TEST(ReadBenchmarkCsv, DuplicateKeyAndBadValues) {
  EXPECT_NE(bench_error(bench_header + bench_row + bench_row).find(":3: benchmark attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:4 appears twice (first on line 2)"),
            std::string::npos);
  std::string bad_pass = bench_row;
  bad_pass.replace(bad_pass.find("forward"), 7, "sideways");
  EXPECT_NE(bench_error(bench_header + bad_pass).find("pass is not forward|backward|forward_backward"),
            std::string::npos);
  std::string negative = bench_row;
  negative.replace(negative.find(",1100,"), 6, ",-1,");
  EXPECT_NE(bench_error(bench_header + negative).find("in column 'max_ns'"), std::string::npos);
}

TEST(ReadSamplesCsv, ReadsAndChecks) {
  TempDirectory dir("ped-csv-test-");
  const fs::path file = dir.path() / "bench.samples.csv";
  write_text(file,
             "variant,pass,dtype,batch,heads,seq_len,head_dim,mask,threads,repetition,time_ns\n"
             "flash,forward,float,1,8,1024,64,causal,4,0,1000\n"
             "flash,forward,float,1,8,1024,64,causal,4,1,1010.5\n");
  const std::vector<Sample> samples = read_samples_csv(file);
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_DOUBLE_EQ(samples[1].time_ns, 1010.5);
  EXPECT_EQ(samples_path_for(dir.path() / "run.csv"), dir.path() / "run.samples.csv");
  EXPECT_EQ(samples_path_for(dir.path() / "run"), dir.path() / "run.samples.csv");
}

TEST(ReadVerifyCsv, ReadsBooleansAndEmptyVariant) {
  TempDirectory dir("ped-csv-test-");
  const fs::path file = dir.path() / "verify.csv";
  write_text(file,
             "op,variant,dtype,shape,mask,reference,quantity,max_abs_err,max_rel_err,norm_rel_err,tolerance,passed,"
             "seed,extra\n"
             "layer_norm,,float,\"[64,32]\",,libtorch,dx,1e-6,2e-6,3e-7,1e-5,true,7,x\n"
             "attention,flash,double,\"[1,2,8,4]\",causal,finite_difference,dq,1e-7,2e-7,3e-7,1e-8,false,8,y\n");
  const std::vector<VerifyRow> rows = read_verify_csv(file);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(rows[0].passed);
  EXPECT_EQ(rows[0].variant, "");
  EXPECT_EQ(rows[0].shape, "[64,32]");
  EXPECT_FALSE(rows[1].passed);
  write_text(file, "op,variant,dtype,shape,mask,reference,quantity,max_abs_err,max_rel_err,norm_rel_err,tolerance,"
                   "passed,seed\nattention,flash,float,s,causal,libtorch,out,1,1,1,1,maybe,1\n");
  try {
    read_verify_csv(file);
    FAIL() << "no error";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find(":2: not true or false in column 'passed': 'maybe'"), std::string::npos)
        << error.what();
  }
}

// verify's 16-bit dtypes (attention plugins that declare them): dtype bfloat16 and float16, and the
// tolerance a computed bound (2 x LibTorch's error + floor), finite and > 0 like any other.
TEST(ReadVerifyCsv, ReadsSixteenBitDtypes) {
  TempDirectory dir("ped-csv-test-");
  const fs::path file = dir.path() / "verify.csv";
  write_text(file,
             "op,variant,dtype,shape,mask,reference,quantity,max_abs_err,max_rel_err,norm_rel_err,tolerance,passed,"
             "seed,detail\n"
             "sdpa,simple,bfloat16,B=1 H=2 Nq=5 Nk=7 d=4,causal,libtorch,dq,0.01,0.02,0.0031,0.021,true,1,x\n"
             "sdpa,reduced_accumulation,float16,B=1 H=1 Nq=40 Nk=64 d=64,none,libtorch,out,0.1,0.3,0.05,0.0031,false,"
             "1,y\n");
  const std::vector<VerifyRow> rows = read_verify_csv(file);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].dtype, "bfloat16");
  EXPECT_TRUE(rows[0].passed);
  EXPECT_EQ(rows[1].dtype, "float16");
  EXPECT_FALSE(rows[1].passed);
}

// verify --masks with a concrete mask: the mask cell holds its Mask::name(), commas and all, quoted by
// csv_cell as verify writes it; the reader unquotes it, and the text parses back to the mask.
TEST(ReadVerifyCsv, ReadsAConcreteMaskNameWithCommas) {
  const Mask window = Mask::sliding_window(2, 0);
  const Mask composite = Mask::union_of({Mask::causal(), Mask::global_tokens(2)});
  const std::string fields = ",libtorch,out,1e-7,1e-7,1e-7,1e-5,true,1,x\n";
  TempDirectory dir("ped-csv-test-");
  const fs::path file = dir.path() / "verify.csv";
  EXPECT_EQ(csv_cell(window.name()), "\"sliding_window(left=2,right=0)\"");
  write_text(file,
             "op,variant,dtype,shape,mask,reference,quantity,max_abs_err,max_rel_err,norm_rel_err,tolerance,passed,"
             "seed,detail\n"
             "sdpa,simple,float,B=1 H=2 Nq=5 Nk=7 d=4," + csv_cell(window.name()) + fields +
             "sdpa,simple,double,B=1 H=2 Nq=5 Nk=7 d=4," + csv_cell(composite.name()) + fields +
             "sdpa,simple,double,B=1 H=2 Nq=5 Nk=7 d=4," + csv_cell("bigbird") + fields);
  const std::vector<VerifyRow> rows = read_verify_csv(file);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].mask, "sliding_window(left=2,right=0)");
  EXPECT_TRUE(Mask::parse(rows[0].mask) == window);
  EXPECT_EQ(rows[1].mask, "union(causal,global_tokens(count=2))");
  EXPECT_TRUE(Mask::parse(rows[1].mask) == composite);
  EXPECT_EQ(rows[2].mask, "bigbird");  // a family name, not a mask text
  EXPECT_EQ(rows[1].quantity, "out");
  EXPECT_TRUE(rows[1].passed);
}

const std::string samples_header = "variant,pass,dtype,batch,heads,seq_len,head_dim,mask,threads,repetition,time_ns\n";
const std::string verify_header =
    "op,variant,dtype,shape,mask,reference,quantity,max_abs_err,max_rel_err,norm_rel_err,tolerance,passed,seed\n";

// The message of the InputError that `read` throws on a file holding `text` ("" if none).
template <class Read>
std::string read_error(const std::string& name, const std::string& text, Read read) {
  TempDirectory dir("ped-csv-test-");
  const fs::path file = dir.path() / name;
  write_text(file, text);
  try {
    read(file);
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}
std::string samples_error(const std::string& text) { return read_error("bench.samples.csv", text, read_samples_csv); }
std::string verify_error(const std::string& text) { return read_error("verify.csv", text, read_verify_csv); }

// bench_row with the cell of `column` replaced by `value`.
std::string bench_row_with(const std::string& column, const std::string& value) {
  static const std::vector<std::string> columns = {
      "variant", "pass", "dtype", "batch", "heads", "seq_len", "head_dim", "mask", "threads", "repetitions",
      "median_ns", "min_ns", "max_ns", "gflops", "peak_bytes", "fraction_of_gemm", "git_rev", "host", "date"};
  std::vector<std::string> cells;
  std::string cell;
  for (char c : bench_row) {
    if (c == ',' || c == '\n') {
      cells.push_back(cell);
      cell.clear();
    } else {
      cell += c;
    }
  }
  std::string row;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    row += (i ? "," : "") + (columns[i] == column ? value : cells.at(i));
  }
  return row + "\n";
}

TEST(ReadBenchmarkCsv, NulByteIsAnErrorWhereverItIs) {
  // At the start of a line (the parser saw an empty line and dropped the row), inside a cell (a
  // "ragged row") and after the last cell (the rest of the line was ignored).
  const std::string row2 = "naive,forward,float,1,8,1024,64,causal,4,9,1000,900,1100,12.5,4096,0.25,abc,host1,2025-01-01\n";
  const struct {
    std::string text;
    std::string expected;
  } cases[] = {
      {bench_header + bench_row + std::string(1, '\0') + row2, ":3: NUL byte at byte 1 of the line"},
      {bench_header + bench_row + "nai" + std::string(1, '\0') + row2.substr(3), ":3: NUL byte at byte 4 of the line"},
      {bench_header + bench_row + row2.substr(0, row2.size() - 1) + std::string(1, '\0') + ",x\n",
       ":3: NUL byte at byte 93 of the line"},
  };
  for (const auto& c : cases) {
    fs::path file;
    const std::string error = bench_error(c.text, &file);
    EXPECT_NE(error.find(file.string() + c.expected), std::string::npos) << error;
  }
  EXPECT_NE(samples_error(samples_header + "flash,forward,float,1,8,1024,64,causal,4,0,1000" + std::string(1, '\0') + "\n")
                .find(":2: NUL byte at byte 48 of the line"),
            std::string::npos);
}

TEST(ReadBenchmarkCsv, RefusesNumbersOutsideTheirMeaning) {
  const struct {
    const char* column;
    const char* value;
    const char* expected;  // in the message, after ":2: "
  } cases[] = {
      {"min_ns", "1200", "min_ns above max_ns 1100 (expected min_ns <= median_ns <= max_ns) in column 'min_ns': '1200'"},
      {"median_ns", "1150", "median_ns outside [min_ns, max_ns] = [900, 1100] in column 'median_ns': '1150'"},
      {"median_ns", "850", "median_ns outside [min_ns, max_ns] = [900, 1100] in column 'median_ns': '850'"},
      {"max_ns", "1e308", "time above 8.64e+13 ns (one day per iteration) in column 'max_ns': '1e308'"},
      {"median_ns", "inf", "time must be a positive finite number in column 'median_ns': 'inf'"},
      {"gflops", "-1", "expected nan (not measured) or a finite number >= 0 in column 'gflops': '-1'"},
      {"gflops", "inf", "expected nan (not measured) or a finite number >= 0 in column 'gflops': 'inf'"},
      {"peak_bytes", "-4096", "expected nan (not measured) or a finite number >= 0 in column 'peak_bytes': '-4096'"},
      {"peak_bytes", "inf", "expected nan (not measured) or a finite number >= 0 in column 'peak_bytes': 'inf'"},
      {"fraction_of_gemm", "-0.5", "expected nan (not measured) or a finite number >= 0 in column 'fraction_of_gemm': '-0.5'"},
      {"fraction_of_gemm", "-inf", "expected nan (not measured) or a finite number >= 0 in column 'fraction_of_gemm': '-inf'"},
      {"repetitions", "0", "repetitions must be positive in column 'repetitions': '0'"},
      {"dtype", "", "empty dtype in column 'dtype': ''"},
      {"mask", "\"\"", "empty mask in column 'mask': ''"},
      {"host", "a\rb", "control character 0x0d in text (expected printable text) in column 'host': 'a\\x0db'"},
  };
  for (const auto& c : cases) {
    const std::string error = bench_error(bench_header + bench_row_with(c.column, c.value));
    EXPECT_NE(error.find(std::string(":2: ") + c.expected), std::string::npos) << c.column << " " << c.value << ": " << error;
  }
  // The edges of the ranges are fine.
  EXPECT_EQ(bench_error(bench_header + bench_row_with("gflops", "nan")), "");
  EXPECT_EQ(bench_error(bench_header + bench_row_with("peak_bytes", "0")), "");
  EXPECT_EQ(bench_error(bench_header + bench_row_with("median_ns", "900")), "");
  EXPECT_EQ(bench_error(bench_header + bench_row_with("max_ns", "8.64e13")), "");
}

TEST(ReadSamplesCsv, RefusesARepetitionGivenTwice) {
  const std::string text = samples_header + "flash,forward,float,1,8,1024,64,causal,4,0,1000\n" +
                           "flash,forward,float,1,8,1024,64,causal,4,1,1010\n" +
                           "flash,forward,float,1,8,1024,64,causal,4,0,1000\n";
  EXPECT_NE(samples_error(text).find(":4: repetition 0 of attention/flash/forward/float/causal/B:1/H:8/N:1024/d:64/T:4 "
                                     "appears twice (first on line 2) in column 'repetition': '0'"),
            std::string::npos)
      << samples_error(text);
  EXPECT_NE(samples_error(samples_header + "flash,forward,float,1,8,1024,64,causal,4,0,1e308\n")
                .find(":2: time above 8.64e+13 ns (one day per iteration) in column 'time_ns': '1e308'"),
            std::string::npos);
}

TEST(ReadVerifyCsv, RecomputesTheVerdictAndRefusesRowsThatContradictIt) {
  const struct {
    const char* row;  // max_abs_err .. passed
    const char* expected;
  } cases[] = {
      {"1,1,nan,1e-5,true",
       "passed is true, but norm_rel_err nan is not <= tolerance 1e-05 (passed means every error is finite and "
       "norm_rel_err <= tolerance) in column 'passed': 'true'"},
      {"0.5,0.5,0.5,1e-08,true", "passed is true, but norm_rel_err 0.5 is not <= tolerance 1e-08"},
      {"inf,inf,inf,1e-5,true", "passed is true, but norm_rel_err inf is not <= tolerance 1e-05"},
      {"nan,1e-9,1e-9,1e-5,true", "passed is true, but max_abs_err is nan"},
      {"1e-9,1e-9,1e-9,1e-5,false", "passed is false, but every error is finite and norm_rel_err 1e-09 <= tolerance 1e-05"},
      {"1,1,1,-1e-5,false", "tolerance must be a finite number > 0 in column 'tolerance': '-1e-5'"},
      {"1,1,1,nan,false", "tolerance must be a finite number > 0 in column 'tolerance': 'nan'"},
      {"1,1,1,0,false", "tolerance must be a finite number > 0 in column 'tolerance': '0'"},
      {"-1,1,1,1e-5,false", "an error must be nan, inf or >= 0 in column 'max_abs_err': '-1'"},
      {"1,1,-inf,1e-5,false", "an error must be nan, inf or >= 0 in column 'norm_rel_err': '-inf'"},
  };
  for (const auto& c : cases) {
    const std::string text = verify_header + "attention,flash,float,s,causal,libtorch,dq," + c.row + ",1\n";
    const std::string error = verify_error(text);
    EXPECT_NE(error.find(std::string("verify.csv:2: ") + c.expected), std::string::npos) << c.row << ": " << error;
  }
  // Failures by NaN, Inf or a shape mismatch (written as inf) are consistent rows.
  EXPECT_EQ(verify_error(verify_header + "attention,flash,float,s,causal,libtorch,dq,nan,nan,nan,1e-5,false,1\n" +
                         "attention,flash,float,s,causal,libtorch,dk,inf,inf,inf,1e-5,false,1\n" +
                         "attention,flash,float,s,causal,libtorch,dv,1e-9,1e-9,1e-5,1e-5,true,1\n"),
            "");
}

TEST(CsvCell, RefusesTextTheReadersCannotReadBack) {
  EXPECT_EQ(csv_cell("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_cell("\ta"), "\"\ta\"");  // the reader trims edge tabs outside quotes
  for (const std::string& text : {std::string("a\nb"), std::string("a\rb"), std::string("a\0b", 3)}) {
    EXPECT_THROW(csv_cell(text), std::invalid_argument);
  }
  TempDirectory dir("ped-csv-test-");
  const fs::path file = dir.path() / "bench.csv";
  write_text(file, bench_header + bench_row);
  std::vector<BenchmarkRow> rows = read_benchmark_csv(file);
  rows[0].host = "h\nx";
  EXPECT_THROW(format_benchmark_csv(rows), std::invalid_argument);
  rows[0].host = "h";
  rows[0].gflops = -1.0;
  EXPECT_THROW(format_benchmark_csv(rows), std::invalid_argument);
}

TEST(AtomicFile, WritesCompleteFilesAndLeavesNoTemps) {
  TempDirectory dir("ped-csv-test-");
  write_file_atomically(dir.path() / "a.txt", "hello");
  EXPECT_EQ(read_text(dir.path() / "a.txt"), "hello");
  write_file_atomically(dir.path() / "a.txt", "replaced");
  EXPECT_EQ(read_text(dir.path() / "a.txt"), "replaced");
  EXPECT_EQ(file_count(dir.path()), 1u);
  {
    StagedFiles staged;
    staged.add(dir.path() / "b.txt", "never committed");
    staged.reserve(dir.path() / "c.png");
    EXPECT_EQ(file_count(dir.path()), 3u);  // a.txt and two temps
  }
  EXPECT_EQ(file_count(dir.path()), 1u);
  EXPECT_THROW(write_file_atomically(dir.path() / "no_such_dir" / "x.txt", "x"), std::runtime_error);
}

}  // namespace
}  // namespace ped::reports

namespace ped::reports {
namespace {

// Every file reports/ writes starts with the header of its schema in core/schemas.hpp, the names its
// readers look up.
TEST(CsvSchemas, WritersPrintTheSchemaHeader) {
  EXPECT_EQ(format_benchmark_csv({}), schema::header_line(schema::benchmark_columns));
  EXPECT_EQ(format_samples_csv({}), schema::header_line(schema::samples_columns));
  EXPECT_EQ(format_comparison_csv({}), schema::header_line(schema::comparison_columns));
}

}  // namespace
}  // namespace ped::reports
