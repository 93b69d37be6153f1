#include "reports/csv_io.hpp"

#include "core/csv.hpp"
#include "core/csv_reader.hpp"
#include "core/errors.hpp"
#include "core/schemas.hpp"

#include <charconv>
#include <cmath>
#include <map>
#include <stdexcept>
#include <utility>

namespace ped::reports {
namespace fs = std::filesystem;

std::string benchmark_name(const BenchmarkKey& key) {
  return concat("attention/", key.variant, "/", key.pass, "/", key.dtype, "/", key.mask, "/B:", key.batch,
                "/H:", key.heads, key.heads_kv != 0 ? concat("/Hkv:", key.heads_kv) : std::string(),
                key.seq_q != 0 ? concat("/Nq:", key.seq_q) : std::string(), "/N:", key.seq_len, "/d:", key.head_dim,
                key.lengths.empty() ? std::string() : concat("/L:", key.lengths), "/T:", key.threads);
}

void canonicalize(BenchmarkKey& key) {
  if (key.heads_kv == key.heads) key.heads_kv = 0;
  if (key.seq_q == key.seq_len) key.seq_q = 0;
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

fs::path phases_path_for(const fs::path& bench_csv) {
  fs::path phases = bench_csv;
  if (phases.extension() == ".csv") {
    phases.replace_extension(".phases.csv");
  } else {
    phases += ".phases.csv";
  }
  return phases;
}

namespace {

// An optional integer cell: 0 when empty (a file without the column).
template <std::size_t N>
std::int64_t optional_integer(const csv::Row<N>& row, std::size_t column) {
  return row.text(column).empty() ? 0 : row.integer(column);
}

// The nine key columns (schema::benchmark_key_columns) come first in each benchmark reader, in this
// order; the three extra ones (schema::benchmark_extra_key_columns) start at column `extra`.
template <std::size_t N>
BenchmarkKey key_from(const csv::Row<N>& row, std::size_t extra) {
  BenchmarkKey key;
  key.variant = row.label(0);
  key.pass = row.label(1);
  key.dtype = row.label(2);
  key.batch = row.integer(3);
  key.heads = row.integer(4);
  key.seq_len = row.integer(5);
  key.head_dim = row.integer(6);
  key.mask = row.label(7);
  key.threads = row.integer(8);
  key.heads_kv = optional_integer(row, extra);
  key.seq_q = optional_integer(row, extra + 1);
  key.lengths = row.label(extra + 2);
  canonicalize(key);
  return key;
}

// Index of `column` in `names` (every problem names a column the reader has).
template <std::size_t N>
std::size_t index_of(const std::array<std::string_view, N>& names, std::string_view column) {
  for (std::size_t c = 0; c < N; ++c) {
    if (names[c] == column) return c;
  }
  throw std::logic_error(concat("index_of: no column '", column, "'"));
}

template <std::size_t N, class Value>
void refuse_problem(const csv::Row<N>& row, const std::array<std::string_view, N>& names, const Value& value) {
  if (const std::optional<FieldProblem> problem = find_problem(value)) row.fail(index_of(names, problem->column), problem->what);
}

void require_rows(const fs::path& file, std::size_t rows) {
  if (rows == 0) throw_input_error(file.string(), ":2: no data rows after the header");
}

std::string key_cells(const BenchmarkKey& key) {
  return concat(csv_cell(key.variant), ",", csv_cell(key.pass), ",", csv_cell(key.dtype), ",", key.batch, ",",
                key.heads, ",", key.seq_len, ",", key.head_dim, ",", csv_cell(key.mask), ",", key.threads);
}

// The extra key columns, written in full (a plain benchmark's heads_kv is its heads).
std::string extra_key_cells(const BenchmarkKey& key) {
  return concat(key.kv_heads(), ",", key.queries(), ",", csv_cell(key.lengths));
}

std::optional<FieldProblem> text_problem(const char* column, const std::string& text) {
  const std::string control = first_control_character(text);
  if (control.empty()) return std::nullopt;
  return FieldProblem{column, concat("control character ", control, " in text (expected printable text)")};
}

std::optional<FieldProblem> key_problem(const BenchmarkKey& key) {
  const std::pair<const char*, const std::string*> texts[] = {
      {"variant", &key.variant}, {"pass", &key.pass}, {"dtype", &key.dtype}, {"mask", &key.mask}};
  for (const auto& [column, text] : texts) {
    if (auto problem = text_problem(column, *text)) return problem;
    if (text->empty()) return FieldProblem{column, concat("empty ", column)};
  }
  if (key.pass != "forward" && key.pass != "backward" && key.pass != "forward_backward") {
    return FieldProblem{"pass", "pass is not forward|backward|forward_backward"};
  }
  const std::pair<const char*, std::int64_t> sizes[] = {
      {"batch", key.batch}, {"heads", key.heads}, {"seq_len", key.seq_len}, {"head_dim", key.head_dim}, {"threads", key.threads}};
  for (const auto& [column, size] : sizes) {
    if (size <= 0) return FieldProblem{column, "size must be positive"};
  }
  if (key.heads_kv != 0 && !(key.heads_kv > 0 && key.heads_kv < key.heads && key.heads % key.heads_kv == 0)) {
    return FieldProblem{"heads_kv", concat("heads_kv ", key.heads_kv, " is not in [1, heads ", key.heads,
                                           ") dividing heads (0: as many as heads, not grouped)")};
  }
  if (key.seq_q < 0 || (key.seq_q != 0 && key.seq_q == key.seq_len)) {
    return FieldProblem{"seq_q", "seq_q must be positive (0 or seq_len: as many queries as keys)"};
  }
  if (auto problem = text_problem("lengths", key.lengths)) return problem;
  return std::nullopt;
}

std::optional<FieldProblem> time_problem(const char* column, double t) {
  if (!(std::isfinite(t) && t > 0.0)) return FieldProblem{column, "time must be a positive finite number"};
  if (t > max_time_ns) return FieldProblem{column, concat("time above ", format_number(max_time_ns), " ns (one day per iteration)")};
  return std::nullopt;
}

}  // namespace

std::optional<FieldProblem> find_problem(const BenchmarkKey& key) { return key_problem(key); }

std::optional<FieldProblem> find_problem(const BenchmarkRow& row) {
  if (auto problem = key_problem(row.key)) return problem;
  if (row.repetitions <= 0) return FieldProblem{"repetitions", "repetitions must be positive"};
  for (const auto& [column, t] : {std::pair{"median_ns", row.median_ns}, std::pair{"min_ns", row.min_ns},
                                   std::pair{"max_ns", row.max_ns}}) {
    if (auto problem = time_problem(column, t)) return problem;
  }
  if (row.min_ns > row.max_ns) {
    return FieldProblem{"min_ns", concat("min_ns above max_ns ", format_number(row.max_ns),
                                         " (expected min_ns <= median_ns <= max_ns)")};
  }
  if (row.median_ns < row.min_ns || row.median_ns > row.max_ns) {
    return FieldProblem{"median_ns", concat("median_ns outside [min_ns, max_ns] = [", format_number(row.min_ns), ", ",
                                            format_number(row.max_ns), "]")};
  }
  for (const auto& [column, value] :
       {std::pair{"gflops", row.gflops}, std::pair{"peak_bytes", row.peak_bytes},
        std::pair{"fraction_of_gemm", row.fraction_of_gemm}, std::pair{"tokens_per_s", row.tokens_per_s},
        std::pair{"gbytes_per_s", row.gbytes_per_s}, std::pair{"fraction_of_copy", row.fraction_of_copy}}) {
    if (!std::isnan(value) && !(std::isfinite(value) && value >= 0.0)) {
      return FieldProblem{column, "expected nan (not measured) or a finite number >= 0"};
    }
  }
  for (const auto& [column, text] : {std::pair{"git_rev", &row.git_rev}, std::pair{"host", &row.host},
                                      std::pair{"date", &row.date}, std::pair{"allocator", &row.allocator}}) {
    if (auto problem = text_problem(column, *text)) return problem;
  }
  return std::nullopt;
}

std::optional<FieldProblem> find_problem(const Sample& sample) {
  if (auto problem = key_problem(sample.key)) return problem;
  if (sample.repetition < 0) return FieldProblem{"repetition", "repetition must be >= 0"};
  return time_problem("time_ns", sample.time_ns);
}

std::optional<FieldProblem> find_problem(const PhaseRow& row) {
  if (auto problem = key_problem(row.key)) return problem;
  if (row.phase.empty()) return FieldProblem{"phase", "empty phase"};
  for (const char c : row.phase) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) {
      return FieldProblem{"phase", concat("phase '", printable(row.phase), "' is not [a-z_]+")};
    }
  }
  if (!(std::isfinite(row.fraction) && row.fraction >= 0.0 && row.fraction <= 1.0)) {
    return FieldProblem{"fraction", "fraction must be a finite number in [0, 1]"};
  }
  return std::nullopt;
}

bool verify_verdict(const VerifyRow& row) {
  return std::isfinite(row.max_abs_err) && std::isfinite(row.max_rel_err) && std::isfinite(row.norm_rel_err) &&
         row.norm_rel_err <= row.tolerance;
}

std::optional<FieldProblem> find_problem(const VerifyRow& row) {
  const std::pair<const char*, const std::string*> texts[] = {
      {"op", &row.op},     {"variant", &row.variant},     {"dtype", &row.dtype}, {"shape", &row.shape},
      {"mask", &row.mask}, {"reference", &row.reference}, {"quantity", &row.quantity}, {"seed", &row.seed}};
  for (const auto& [column, text] : texts) {
    if (auto problem = text_problem(column, *text)) return problem;
  }
  if (row.op.empty()) return FieldProblem{"op", "empty op"};
  const std::pair<const char*, double> errors[] = {
      {"max_abs_err", row.max_abs_err}, {"max_rel_err", row.max_rel_err}, {"norm_rel_err", row.norm_rel_err}};
  for (const auto& [column, error] : errors) {
    if (error < 0.0) return FieldProblem{column, "an error must be nan, inf or >= 0"};
  }
  if (!(std::isfinite(row.tolerance) && row.tolerance > 0.0)) {
    return FieldProblem{"tolerance", "tolerance must be a finite number > 0"};
  }
  const bool verdict = verify_verdict(row);
  if (row.passed == verdict) return std::nullopt;
  constexpr const char* rule = " (passed means every error is finite and norm_rel_err <= tolerance)";
  if (!row.passed) {
    return FieldProblem{"passed", concat("passed is false, but every error is finite and norm_rel_err ",
                                         format_number(row.norm_rel_err), " <= tolerance ", format_number(row.tolerance),
                                         rule)};
  }
  if (!(row.norm_rel_err <= row.tolerance)) {
    return FieldProblem{"passed", concat("passed is true, but norm_rel_err ", format_number(row.norm_rel_err),
                                         " is not <= tolerance ", format_number(row.tolerance), rule)};
  }
  const double other = std::isfinite(row.max_abs_err) ? row.max_rel_err : row.max_abs_err;
  return FieldProblem{"passed", concat("passed is true, but ", std::isfinite(row.max_abs_err) ? "max_rel_err" : "max_abs_err",
                                       " is ", format_number(other), rule)};
}

std::vector<BenchmarkRow> parse_benchmark_csv(std::string_view text, const fs::path& source) {
  static constexpr const auto& names = schema::benchmark_columns;
  std::array<bool, 26> required;
  required.fill(true);
  // allocator, the extra key columns and the rates after them: added later; older files have none
  for (std::size_t c = 19; c < 26; ++c) required[c] = false;
  std::vector<BenchmarkRow> rows;
  std::map<BenchmarkKey, std::size_t> line_of_key;
  const auto optional_number = [](const csv::Row<26>& row, std::size_t column) {
    return row.text(column).empty() ? std::numeric_limits<double>::quiet_NaN() : row.number(column);
  };
  const std::size_t count = csv::read_columns(source, text, names, required, [&](const csv::Row<26>& row) {
    BenchmarkRow out;
    out.key = key_from(row, 20);
    out.repetitions = row.integer(9);
    out.median_ns = row.number(10);
    out.min_ns = row.number(11);
    out.max_ns = row.number(12);
    out.gflops = row.number(13);
    out.peak_bytes = row.number(14);
    out.fraction_of_gemm = row.number(15);
    out.git_rev = row.label(16);
    out.host = row.label(17);
    out.date = row.label(18);
    out.allocator = row.label(19);
    out.tokens_per_s = optional_number(row, 23);
    out.gbytes_per_s = optional_number(row, 24);
    out.fraction_of_copy = optional_number(row, 25);
    out.line = row.line();
    refuse_problem(row, names, out);
    const auto [it, inserted] = line_of_key.emplace(out.key, out.line);
    if (!inserted) {
      throw_input_error(source.string(), ":", out.line, ": benchmark ", benchmark_name(out.key),
                        " appears twice (first on line ", it->second, ")");
    }
    rows.push_back(std::move(out));
  });
  require_rows(source, count);
  return rows;
}

std::vector<Sample> parse_samples_csv(std::string_view text, const fs::path& source) {
  static constexpr const auto& names = schema::samples_columns;
  std::array<bool, 14> required;
  required.fill(true);
  for (std::size_t c = 11; c < 14; ++c) required[c] = false;  // the extra key columns: added later
  std::vector<Sample> samples;
  std::map<std::pair<BenchmarkKey, std::int64_t>, std::size_t> line_of_repetition;
  const std::size_t count = csv::read_columns(source, text, names, required, [&](const csv::Row<14>& row) {
    Sample out;
    out.key = key_from(row, 11);
    out.repetition = row.integer(9);
    out.time_ns = row.number(10);
    out.line = row.line();
    refuse_problem(row, names, out);
    // The same repetition twice would count as two samples and change the U test's verdict.
    const auto [it, inserted] = line_of_repetition.emplace(std::pair{out.key, out.repetition}, out.line);
    if (!inserted) {
      row.fail(9, concat("repetition ", out.repetition, " of ", benchmark_name(out.key), " appears twice (first on line ",
                         it->second, ")"));
    }
    samples.push_back(std::move(out));
  });
  require_rows(source, count);
  return samples;
}

std::vector<PhaseRow> parse_phases_csv(std::string_view text, const fs::path& source) {
  static constexpr const auto& names = schema::phases_columns;
  std::array<bool, 14> required;
  required.fill(true);
  for (std::size_t c = 11; c < 14; ++c) required[c] = false;  // the extra key columns: added later
  std::vector<PhaseRow> rows;
  std::map<std::pair<BenchmarkKey, std::string>, std::size_t> line_of_phase;
  csv::read_columns(source, text, names, required, [&](const csv::Row<14>& row) {
    PhaseRow out;
    out.key = key_from(row, 11);
    out.phase = row.label(9);
    out.fraction = row.number(10);
    out.line = row.line();
    refuse_problem(row, names, out);
    const auto [it, inserted] = line_of_phase.emplace(std::pair{out.key, out.phase}, out.line);
    if (!inserted) {
      row.fail(9, concat("phase ", out.phase, " of ", benchmark_name(out.key), " appears twice (first on line ",
                         it->second, ")"));
    }
    rows.push_back(std::move(out));
  });
  return rows;
}

std::vector<VerifyRow> parse_verify_csv(std::string_view text, const fs::path& source) {
  static constexpr const auto& names = schema::verify_columns;
  std::array<bool, 14> required;
  required.fill(true);
  required[13] = false;  // detail: the reason of a failure, not read
  std::vector<VerifyRow> rows;
  const std::size_t count = csv::read_columns(source, text, names, required, [&](const csv::Row<14>& row) {
    VerifyRow out;
    out.op = row.label(0);
    out.variant = row.label(1);
    out.dtype = row.label(2);
    out.shape = row.label(3);
    out.mask = row.label(4);
    out.reference = row.label(5);
    out.quantity = row.label(6);
    out.max_abs_err = row.number(7);
    out.max_rel_err = row.number(8);
    out.norm_rel_err = row.number(9);
    out.tolerance = row.number(10);
    out.passed = row.boolean(11);
    out.seed = row.label(12);
    out.line = row.line();
    refuse_problem(row, names, out);
    rows.push_back(std::move(out));
  });
  require_rows(source, count);
  return rows;
}

std::vector<BenchmarkRow> read_benchmark_csv(const fs::path& file) {
  return parse_benchmark_csv(csv::read_text_file(file), file);
}

std::vector<Sample> read_samples_csv(const fs::path& file) { return parse_samples_csv(csv::read_text_file(file), file); }

std::vector<VerifyRow> read_verify_csv(const fs::path& file) { return parse_verify_csv(csv::read_text_file(file), file); }

std::vector<PhaseRow> read_phases_csv(const fs::path& file) { return parse_phases_csv(csv::read_text_file(file), file); }

std::string format_benchmark_csv(const std::vector<BenchmarkRow>& rows) {
  std::string out = schema::header_line(schema::benchmark_columns);
  std::map<BenchmarkKey, std::size_t> index_of_key;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const BenchmarkRow& row = rows[i];
    if (const std::optional<FieldProblem> problem = find_problem(row)) {
      throw_invalid("format_benchmark_csv", "row ", i, " (", printable(benchmark_name(row.key)), "): ", problem->what,
                    " in column '", problem->column, "'");
    }
    if (const auto [it, inserted] = index_of_key.emplace(row.key, i); !inserted) {
      throw_invalid("format_benchmark_csv", "rows ", it->second, " and ", i, " are both ", benchmark_name(row.key));
    }
    out += concat(key_cells(row.key), ",", row.repetitions, ",", format_number(row.median_ns), ",",
                  format_number(row.min_ns), ",", format_number(row.max_ns), ",", format_number(row.gflops), ",",
                  format_number(row.peak_bytes), ",", format_number(row.fraction_of_gemm), ",", csv_cell(row.git_rev),
                  ",", csv_cell(row.host), ",", csv_cell(row.date), ",", csv_cell(row.allocator), ",",
                  extra_key_cells(row.key), ",", format_number(row.tokens_per_s), ",", format_number(row.gbytes_per_s),
                  ",", format_number(row.fraction_of_copy), "\n");
  }
  return out;
}

std::string format_samples_csv(const std::vector<Sample>& samples) {
  std::string out = schema::header_line(schema::samples_columns);
  std::map<std::pair<BenchmarkKey, std::int64_t>, std::size_t> index_of_repetition;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const Sample& sample = samples[i];
    if (const std::optional<FieldProblem> problem = find_problem(sample)) {
      throw_invalid("format_samples_csv", "sample ", i, " (", printable(benchmark_name(sample.key)), "): ",
                    problem->what, " in column '", problem->column, "'");
    }
    if (const auto [it, inserted] = index_of_repetition.emplace(std::pair{sample.key, sample.repetition}, i); !inserted) {
      throw_invalid("format_samples_csv", "samples ", it->second, " and ", i, " are both repetition ", sample.repetition,
                    " of ", benchmark_name(sample.key));
    }
    out += concat(key_cells(sample.key), ",", sample.repetition, ",", format_number(sample.time_ns), ",",
                  extra_key_cells(sample.key), "\n");
  }
  return out;
}

}  // namespace ped::reports

namespace ped::reports {

std::string format_phases_csv(const std::vector<PhaseRow>& rows) {
  std::string out = schema::header_line(schema::phases_columns);
  std::map<std::pair<BenchmarkKey, std::string>, std::size_t> index_of_phase;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const PhaseRow& row = rows[i];
    if (const std::optional<FieldProblem> problem = find_problem(row)) {
      throw_invalid("format_phases_csv", "row ", i, " (", printable(benchmark_name(row.key)), "): ", problem->what,
                    " in column '", problem->column, "'");
    }
    if (const auto [it, inserted] = index_of_phase.emplace(std::pair{row.key, row.phase}, i); !inserted) {
      throw_invalid("format_phases_csv", "rows ", it->second, " and ", i, " are both phase ", row.phase, " of ",
                    benchmark_name(row.key));
    }
    out += concat(key_cells(row.key), ",", csv_cell(row.phase), ",", format_number(row.fraction), ",",
                  extra_key_cells(row.key), "\n");
  }
  return out;
}

}  // namespace ped::reports
