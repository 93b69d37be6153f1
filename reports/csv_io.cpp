#include "reports/csv_io.hpp"

#include "reports/csv_reader.hpp"
#include "reports/errors.hpp"

#include <charconv>
#include <cmath>
#include <map>

namespace ped::reports {
namespace fs = std::filesystem;

std::string benchmark_name(const BenchmarkKey& key) {
  return concat("attention/", key.variant, "/", key.pass, "/", key.dtype, "/", key.mask, "/B:", key.batch,
                "/H:", key.heads, "/N:", key.seq_len, "/d:", key.head_dim, "/T:", key.threads);
}

fs::path samples_path_for(const fs::path& bench_csv) {
  fs::path samples = bench_csv;
  if (samples.extension() == ".csv") {
    samples.replace_extension(".samples.csv");
  } else {
    samples += ".samples.csv";
  }
  return samples;
}

namespace {

constexpr std::size_t key_columns = 9;

// The nine key columns come first in both benchmark readers, in this order.
template <std::size_t N>
BenchmarkKey key_from(const csv::Row<N>& row) {
  BenchmarkKey key;
  key.variant = row.text(0);
  key.pass = row.text(1);
  key.dtype = row.text(2);
  key.batch = row.integer(3);
  key.heads = row.integer(4);
  key.seq_len = row.integer(5);
  key.head_dim = row.integer(6);
  key.mask = row.text(7);
  key.threads = row.integer(8);
  if (key.variant.empty()) row.fail(0, "empty variant");
  if (key.pass != "forward" && key.pass != "backward" && key.pass != "forward_backward") {
    row.fail(1, "pass is not forward|backward|forward_backward");
  }
  for (std::size_t c : {3, 4, 5, 6, 8}) {
    if (row.integer(c) <= 0) row.fail(c, "size must be positive");
  }
  return key;
}

void require_rows(const fs::path& file, std::size_t rows) {
  if (rows == 0) throw_input_error(file.string(), ":2: no data rows after the header");
}

std::string key_cells(const BenchmarkKey& key) {
  return concat(csv_cell(key.variant), ",", csv_cell(key.pass), ",", csv_cell(key.dtype), ",", key.batch, ",",
                key.heads, ",", key.seq_len, ",", key.head_dim, ",", csv_cell(key.mask), ",", key.threads);
}

constexpr const char* key_header = "variant,pass,dtype,batch,heads,seq_len,head_dim,mask,threads";

}  // namespace

std::vector<BenchmarkRow> read_benchmark_csv(const fs::path& file) {
  static constexpr std::array<std::string_view, 19> names = {
      "variant",     "pass",   "dtype",  "batch",      "heads",      "seq_len",          "head_dim",
      "mask",        "threads", "repetitions", "median_ns", "min_ns", "max_ns",           "gflops",
      "peak_bytes", "fraction_of_gemm", "git_rev", "host", "date"};
  std::array<bool, 19> required;
  required.fill(true);
  std::vector<BenchmarkRow> rows;
  std::map<BenchmarkKey, std::size_t> line_of_key;
  const std::size_t count = csv::read_columns(file, names, required, [&](const csv::Row<19>& row) {
    BenchmarkRow out;
    out.key = key_from(row);
    out.repetitions = row.integer(9);
    out.median_ns = row.number(10);
    out.min_ns = row.number(11);
    out.max_ns = row.number(12);
    out.gflops = row.number(13);
    out.peak_bytes = row.number(14);
    out.fraction_of_gemm = row.number(15);
    out.git_rev = row.text(16);
    out.host = row.text(17);
    out.date = row.text(18);
    out.line = row.line();
    if (out.repetitions <= 0) row.fail(9, "repetitions must be positive");
    for (std::size_t c : {10, 11, 12}) {
      const double t = row.number(c);
      if (!(std::isfinite(t) && t > 0.0)) row.fail(c, "time must be a positive finite number");
    }
    const auto [it, inserted] = line_of_key.emplace(out.key, out.line);
    if (!inserted) {
      throw_input_error(file.string(), ":", out.line, ": benchmark ", benchmark_name(out.key),
                        " appears twice (first on line ", it->second, ")");
    }
    rows.push_back(std::move(out));
  });
  require_rows(file, count);
  return rows;
}

std::vector<Sample> read_samples_csv(const fs::path& file) {
  static constexpr std::array<std::string_view, 11> names = {"variant",  "pass",    "dtype",      "batch",
                                                             "heads",    "seq_len", "head_dim",   "mask",
                                                             "threads",  "repetition", "time_ns"};
  std::array<bool, 11> required;
  required.fill(true);
  std::vector<Sample> samples;
  const std::size_t count = csv::read_columns(file, names, required, [&](const csv::Row<11>& row) {
    Sample out;
    out.key = key_from(row);
    out.repetition = row.integer(9);
    out.time_ns = row.number(10);
    out.line = row.line();
    if (out.repetition < 0) row.fail(9, "repetition must be >= 0");
    if (!(std::isfinite(out.time_ns) && out.time_ns > 0.0)) row.fail(10, "time must be a positive finite number");
    samples.push_back(std::move(out));
  });
  require_rows(file, count);
  return samples;
}

std::vector<VerifyRow> read_verify_csv(const fs::path& file) {
  static constexpr std::array<std::string_view, 13> names = {
      "op",          "variant",      "dtype",     "shape",  "mask", "reference", "quantity",
      "max_abs_err", "max_rel_err", "norm_rel_err", "tolerance", "passed", "seed"};
  std::array<bool, 13> required;
  required.fill(true);
  std::vector<VerifyRow> rows;
  const std::size_t count = csv::read_columns(file, names, required, [&](const csv::Row<13>& row) {
    VerifyRow out;
    out.op = row.text(0);
    out.variant = row.text(1);
    out.dtype = row.text(2);
    out.shape = row.text(3);
    out.mask = row.text(4);
    out.reference = row.text(5);
    out.quantity = row.text(6);
    out.max_abs_err = row.number(7);
    out.max_rel_err = row.number(8);
    out.norm_rel_err = row.number(9);
    out.tolerance = row.number(10);
    out.passed = row.boolean(11);
    out.seed = row.text(12);
    out.line = row.line();
    if (out.op.empty()) row.fail(0, "empty op");
    rows.push_back(std::move(out));
  });
  require_rows(file, count);
  return rows;
}

std::string csv_cell(const std::string& text) {
  // Also quoted: a leading '#' (the reader skips such lines as comments) and edge blanks (it trims them).
  const bool plain = text.find_first_of(",\"\r\n") == std::string::npos &&
                     (text.empty() || (text.front() != '#' && text.front() != ' ' && text.back() != ' '));
  if (plain) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

std::string format_number(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (error != std::errc()) throw_invalid("format_number", "cannot format ", value);
  return std::string(buffer, end);
}

std::string format_benchmark_csv(const std::vector<BenchmarkRow>& rows) {
  std::string out = concat(key_header, ",repetitions,median_ns,min_ns,max_ns,gflops,peak_bytes,fraction_of_gemm,",
                           "git_rev,host,date\n");
  for (const BenchmarkRow& row : rows) {
    out += concat(key_cells(row.key), ",", row.repetitions, ",", format_number(row.median_ns), ",",
                  format_number(row.min_ns), ",", format_number(row.max_ns), ",", format_number(row.gflops), ",",
                  format_number(row.peak_bytes), ",", format_number(row.fraction_of_gemm), ",", csv_cell(row.git_rev),
                  ",", csv_cell(row.host), ",", csv_cell(row.date), "\n");
  }
  return out;
}

std::string format_samples_csv(const std::vector<Sample>& samples) {
  std::string out = concat(key_header, ",repetition,time_ns\n");
  for (const Sample& sample : samples) {
    out += concat(key_cells(sample.key), ",", sample.repetition, ",", format_number(sample.time_ns), "\n");
  }
  return out;
}

}  // namespace ped::reports
