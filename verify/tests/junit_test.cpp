#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "verify/junit.hpp"

namespace ped::verify {
namespace {

CheckRow row(std::string op, std::string variant, std::string quantity, bool passed, double err = 1e-6) {
  CheckRow r{.op = std::move(op),
             .variant = std::move(variant),
             .dtype = "float",
             .shape = "B=1 H=2 Nq=5 Nk=7 d=4",
             .mask = "causal",
             .reference = "libtorch",
             .quantity = std::move(quantity)};
  r.metrics.norm_rel_err = err;
  r.metrics.max_abs_err = 2 * err;
  r.metrics.max_rel_err = 3 * err;
  r.tolerance = 1e-4;
  r.passed = passed;
  r.seed = 1;
  r.detail = "ours float vs LibTorch autograd float";
  return r;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(Junit, EscapesMarkupCharacters) {
  EXPECT_EQ(xml_escaped("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
}

TEST(Junit, EscapesControlBytesAsPrintableDoes) {
  EXPECT_EQ(xml_escaped(std::string("x\x01y\x1b[0m\x7f", 8)), "x\\x01y\\x1b[0m\\x7f");
  EXPECT_EQ(xml_escaped(std::string("nul\0!", 5)), "nul\\x00!");
  // Line breaks: escaped in attributes (which would normalise them away), kept in element text.
  EXPECT_EQ(xml_escaped("a\nb\tc\r"), "a\\x0ab\\x09c\\x0d");
  EXPECT_EQ(xml_escaped("a\nb\tc\r", true), "a\nb\tc\\x0d");
}

TEST(Junit, KeepsValidUtf8AndEscapesInvalidBytes) {
  EXPECT_EQ(xml_escaped("\xce\xb5 \xe2\x80\x96 \xf0\x9f\x98\x80"), "\xce\xb5 \xe2\x80\x96 \xf0\x9f\x98\x80");
  EXPECT_EQ(xml_escaped("a\xff" "b"), "a\\xffb");                 // never a UTF-8 byte
  EXPECT_EQ(xml_escaped("\xc3"), "\\xc3");                         // truncated sequence
  EXPECT_EQ(xml_escaped("\xc0\xbc"), "\\xc0\\xbc");                // overlong '<'
  EXPECT_EQ(xml_escaped("\xed\xa0\x80"), "\\xed\\xa0\\x80");       // a surrogate
  EXPECT_EQ(xml_escaped("\xef\xbf\xbf"), "\\xef\\xbf\\xbf");       // U+FFFF, not an XML character
}

TEST(Junit, CountsPerSuiteAndOverall) {
  std::vector<CheckRow> rows = {row("sdpa", "simple", "out", true), row("sdpa", "simple", "dq", false, 0.5),
                                row("sdpa", "simple", "dk", false, 0.4), row("layer_norm", "", "dx", true)};
  CheckRow crashed = row("sdpa", "crashes", "*", false);
  crashed.metrics.comparable = false;
  crashed.detail = "child process killed by signal 11 (Segmentation fault) while checking sdpa/crashes";
  rows.push_back(crashed);
  const std::string xml = junit_xml(rows, {{"sdpa", 1.5}, {"layer_norm", 0.25}});
  EXPECT_NE(xml.find("<testsuites name=\"verify\" tests=\"5\" failures=\"2\" errors=\"1\" skipped=\"0\" time=\"1.75\">"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<testsuite name=\"sdpa\" tests=\"4\" failures=\"2\" errors=\"1\" skipped=\"0\" time=\"1.5\">"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<testsuite name=\"layer_norm\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\" time=\"0.25\">"),
            std::string::npos)
      << xml;
  EXPECT_EQ(count(xml, "<testcase "), 5u);
  EXPECT_EQ(count(xml, "<failure "), 2u);
  EXPECT_EQ(count(xml, "<error "), 1u);
  EXPECT_NE(xml.find("<error message=\"the check could not run: child process killed by signal 11"), std::string::npos);
  EXPECT_NE(xml.find("classname=\"verify.layer_norm\""), std::string::npos);
}

TEST(Junit, FailureNamesTheQuantityMetricsAndTolerance) {
  CheckRow bad = row("sdpa", "no_rowsum_term", "dq", false, 0.5);
  bad.detail = "plugin said: <bad> & \x01worse\"";
  const std::string xml = junit_xml({bad});
  EXPECT_NE(xml.find("<testcase classname=\"verify.sdpa.no_rowsum_term\" name=\"float [B=1 H=2 Nq=5 Nk=7 d=4] "
                     "mask=causal seed=1 vs libtorch: dq\">"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<failure message=\"dq: norm_rel_err 0.5 &gt; tolerance 0.0001 (max_abs_err 1, max_rel_err 1.5)\" "
                     "type=\"above_tolerance\">"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("detail: plugin said: &lt;bad&gt; &amp; \\x01worse&quot;\n"), std::string::npos) << xml;
  EXPECT_NE(xml.find("quantity: dq\n"), std::string::npos);
  EXPECT_EQ(xml.find('\x01'), std::string::npos);
}

TEST(Junit, NotComparableRowSaysWhy) {
  CheckRow nan = row("sdpa", "writes_nan", "out", false);
  nan.metrics.comparable = false;
  nan.metrics.problem = "3 NaN/Inf value(s) in ours (first at flat index 0)";
  nan.metrics.norm_rel_err = std::numeric_limits<double>::quiet_NaN();
  const std::string xml = junit_xml({nan});
  EXPECT_NE(xml.find("<failure message=\"out: not comparable (3 NaN/Inf value(s) in ours (first at flat index 0)), "
                     "tolerance 0.0001\" type=\"not_comparable\">"),
            std::string::npos)
      << xml;
}

TEST(Junit, CaseNamesAreUniqueOverTheColumnsThatMakeARow) {
  std::vector<CheckRow> rows;
  for (const char* dtype : {"float", "double"}) {
    for (const char* reference : {"libtorch", "naive"}) {
      for (const char* mask : {"none", "causal"}) {
        for (std::uint64_t seed : {1, 2}) {
          for (const char* quantity : {"out", "lse", "dq"}) {
            CheckRow r = row("sdpa", "flash", quantity, true);
            r.dtype = dtype;
            r.reference = reference;
            r.mask = mask;
            r.seed = seed;
            rows.push_back(r);
          }
        }
      }
    }
  }
  std::set<std::string> names;
  for (const CheckRow& r : rows) names.insert(junit_class_name(r) + "/" + junit_case_name(r));
  EXPECT_EQ(names.size(), rows.size());
}

TEST(Junit, WritesTheFileAtomically) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "ped_junit_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::filesystem::path path = dir / "junit.xml";
  const std::vector<CheckRow> rows = {row("sdpa", "simple", "dq", false, 0.5)};
  write_junit_atomic(path.string(), rows);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), junit_xml(rows));
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1u);  // no temp file left beside it
  EXPECT_THROW(write_junit_atomic((dir / "no_such_dir" / "junit.xml").string(), rows), std::runtime_error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ped::verify
