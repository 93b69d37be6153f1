#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/schemas.hpp"
#include "reports/csv_io.hpp"
#include "verify/metrics.hpp"
#include "verify/report.hpp"

namespace ped::verify {
namespace {

TEST(Metrics, KnownValues) {
  const arma::mat ref = {{3.0, 0.0}, {0.0, 4.0}};  // ||ref|| = 5
  const arma::mat ours = {{3.0, 0.0}, {0.0, 4.5}};
  const ErrorMetrics m = compare_tensors(ours, ref);
  EXPECT_TRUE(m.comparable);
  EXPECT_DOUBLE_EQ(m.max_abs_err, 0.5);
  EXPECT_DOUBLE_EQ(m.norm_rel_err, 0.1);
  EXPECT_DOUBLE_EQ(m.max_rel_err, 0.125);
  EXPECT_TRUE(make_row("y", m, 0.11, "").passed);
  EXPECT_FALSE(make_row("y", m, 0.09, "").passed);
}

TEST(Metrics, NormFloorBoundsTheDenominator) {
  const arma::mat zero(2, 2, arma::fill::zeros);
  const arma::mat noise(2, 2, arma::fill::value(1e-15));
  EXPECT_GT(compare_tensors(noise, zero).norm_rel_err, 1e10);
  EXPECT_NEAR(compare_tensors(noise, zero, 1.0).norm_rel_err, 2e-15, 1e-20);
  EXPECT_DOUBLE_EQ(norm_floor_of({arma::mat{{3.0, 4.0}}, zero}), 5.0 * 1e-2);
}

TEST(Metrics, NanOrInfIsAFailureWithItsReason) {
  const arma::mat ref = {{1.0, 2.0}};
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    const arma::mat ours = {{1.0, bad}};
    const ErrorMetrics m = compare_tensors(ours, ref);
    EXPECT_FALSE(m.comparable);
    EXPECT_NE(m.problem.find("NaN/Inf value(s) in ours"), std::string::npos) << m.problem;
    const CheckRow row = make_row("y", m, 1e300, "");
    EXPECT_FALSE(row.passed) << "a non-finite tensor must never pass, whatever the tolerance";
    EXPECT_EQ(row.detail, m.problem);
    const ErrorMetrics r = compare_tensors(ref, ours);
    EXPECT_NE(r.problem.find("in the reference"), std::string::npos) << r.problem;
    EXPECT_FALSE(make_row("y", r, 1e300, "").passed);
  }
}

TEST(Metrics, ShapeMismatchIsAFailure) {
  const ErrorMetrics m = compare_tensors(arma::mat(2, 3, arma::fill::zeros), arma::mat(3, 2, arma::fill::zeros));
  EXPECT_FALSE(m.comparable);
  EXPECT_NE(m.problem.find("shape mismatch"), std::string::npos);
  EXPECT_FALSE(make_row("dw", m, 1e300, "").passed);
}

TEST(Report, CsvHasTheColumnsAndIsWrittenAtomically) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "ped_report_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  CheckRow row = make_row("dx", compare_tensors(arma::mat(1, 1, arma::fill::ones), arma::mat(1, 1, arma::fill::ones)), 1e-4, "detail, with \"quotes\"");
  row.op = "layer_norm";
  row.dtype = "float";
  row.shape = "N=1 D=1";
  row.reference = "libtorch";
  row.seed = 42;
  const std::string path = (dir / "v.csv").string();
  write_csv_atomic(path, {row});
  std::ifstream in(path);
  std::string header, line;
  std::getline(in, header);
  std::getline(in, line);
  EXPECT_EQ(header,
            "op,variant,dtype,shape,mask,reference,quantity,max_abs_err,max_rel_err,norm_rel_err,tolerance,passed,seed,"
            "detail");
  EXPECT_EQ(line, "layer_norm,,float,N=1 D=1,,libtorch,dx,0,0,0,0.0001,true,42,\"detail, with \"\"quotes\"\"\"");
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1u) << "no temp file may be left behind";
  // An unwritable destination throws and leaves nothing behind.
  EXPECT_THROW(write_csv_atomic((dir / "missing" / "v.csv").string(), {row}), std::runtime_error);
  std::filesystem::remove_all(dir);
}

// What verify writes, the report's reader takes back: passing, failing and non-finite rows, and a
// detail of several lines (a LibTorch exception text), which a CSV cell cannot hold as it is.
TEST(Report, CsvReadsBackThroughTheReportReader) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "ped_report_read_back_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const arma::mat one(2, 1, arma::fill::ones);
  arma::mat off = one;
  off(0, 0) = 1.5;
  arma::mat bad = one;
  bad(1, 0) = std::numeric_limits<double>::quiet_NaN();
  std::vector<CheckRow> rows = {make_row("y", compare_tensors(one, one), 1e-8, "exact"),
                                make_row("dx", compare_tensors(off, one), 1e-8, "exception: first line\nsecond\tline"),
                                make_row("dw", compare_tensors(bad, one), 1e-8, "")};
  for (CheckRow& r : rows) {
    r.op = "linear";
    r.dtype = "double";
    r.reference = "libtorch";
  }
  const std::string path = (dir / "v.csv").string();
  write_csv_atomic(path, rows);
  const auto read = reports::read_verify_csv(path);
  ASSERT_EQ(read.size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(read[i].passed, rows[i].passed) << rows[i].quantity;
    EXPECT_EQ(read[i].quantity, rows[i].quantity);
  }
  EXPECT_FALSE(read[1].passed);
  EXPECT_FALSE(read[2].passed);
  std::filesystem::remove_all(dir);
}

// The header verify writes is the verify.csv schema of core/schemas.hpp, which the reader looks up.
TEST(Report, CsvHeaderIsTheSchema) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "ped_report_header_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "v.csv").string();
  write_csv_atomic(path, {});
  std::ifstream in(path);
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header + "\n", schema::header_line(schema::verify_columns));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ped::verify
