#include "fuzz/reports_checks.hpp"

#include "fuzz/fuzz_target.hpp"
#include "core/errors.hpp"

#include <cmath>
#include <map>
#include <set>
#include <utility>

namespace ped::fuzz {
namespace reports = ped::reports;

namespace {

constexpr double one_day_ns = 86400.0 * 1e9;

std::string where(std::size_t index, const reports::BenchmarkKey& key) {
  return ped::concat("row ", index, " (", ped::printable(reports::benchmark_name(key)), ")");
}

void check_key(std::string_view target, const std::string& at, const reports::BenchmarkKey& key) {
  for (const std::string* text : {&key.variant, &key.pass, &key.dtype, &key.mask}) {
    if (text->empty()) fail(target, at + ": accepted an empty variant, pass, dtype or mask");
    if (has_control_character(*text)) fail(target, at + ": accepted a control character in a key");
  }
  if (key.pass != "forward" && key.pass != "backward" && key.pass != "forward_backward") {
    fail(target, at + ": accepted pass '" + key.pass + "'");
  }
  for (std::int64_t size : {key.batch, key.heads, key.seq_len, key.head_dim, key.threads}) {
    if (size <= 0) fail(target, at + ": accepted a size <= 0");
  }
  // The extra key columns, in their canonical form (reports/csv_io.hpp, BenchmarkKey).
  if (key.heads_kv != 0 && !(key.heads_kv > 0 && key.heads_kv < key.heads && key.heads % key.heads_kv == 0)) {
    fail(target, at + ": accepted heads_kv that is neither 0 nor a divisor of heads below heads");
  }
  if (key.seq_q < 0 || (key.seq_q != 0 && key.seq_q == key.seq_len)) {
    fail(target, at + ": accepted seq_q that is negative or not canonical (equal to seq_len)");
  }
  if (has_control_character(key.lengths)) fail(target, at + ": accepted a control character in lengths");
}

bool measured_or_nan(double value) { return std::isnan(value) || (std::isfinite(value) && value >= 0.0); }
bool time_in_range(double t) { return std::isfinite(t) && t > 0.0 && t <= one_day_ns; }

bool same_key_and_values(const reports::BenchmarkRow& a, const reports::BenchmarkRow& b) {
  return a.key == b.key && a.repetitions == b.repetitions && same_number(a.median_ns, b.median_ns) &&
         same_number(a.min_ns, b.min_ns) && same_number(a.max_ns, b.max_ns) && same_number(a.gflops, b.gflops) &&
         same_number(a.peak_bytes, b.peak_bytes) && same_number(a.fraction_of_gemm, b.fraction_of_gemm) &&
         same_number(a.tokens_per_s, b.tokens_per_s) && same_number(a.gbytes_per_s, b.gbytes_per_s) &&
         same_number(a.fraction_of_copy, b.fraction_of_copy) && a.allocator == b.allocator &&
         a.git_rev == b.git_rev && a.host == b.host && a.date == b.date;
}

// Runs `write` (a writer of reports/), failing the target if it throws.
template <class Write>
std::string written_or_fail(std::string_view target, const char* writer, Write&& write) {
  try {
    return write();
  } catch (const std::exception& error) {
    fail(target, std::string(writer) + " refused what its reader accepted: " + error.what());
  }
}

}  // namespace

void check_benchmark_rows(std::string_view target, const std::vector<reports::BenchmarkRow>& rows) {
  if (rows.empty()) fail(target, "accepted a file without data rows");
  std::set<reports::BenchmarkKey> keys;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const reports::BenchmarkRow& row = rows[i];
    const std::string at = where(i, row.key);
    check_key(target, at, row.key);
    if (!keys.insert(row.key).second) fail(target, at + ": accepted a key twice");
    if (row.repetitions < 1) fail(target, at + ": accepted repetitions < 1");
    if (!(time_in_range(row.min_ns) && time_in_range(row.median_ns) && time_in_range(row.max_ns))) {
      fail(target, at + ": accepted a time outside (0, one day]");
    }
    if (!(row.min_ns <= row.median_ns && row.median_ns <= row.max_ns)) {
      fail(target, at + ": accepted times without min <= median <= max");
    }
    if (!measured_or_nan(row.gflops) || !measured_or_nan(row.peak_bytes) || !measured_or_nan(row.fraction_of_gemm)) {
      fail(target, at + ": accepted gflops, peak_bytes or fraction_of_gemm that is neither nan nor finite >= 0");
    }
    if (!measured_or_nan(row.tokens_per_s) || !measured_or_nan(row.gbytes_per_s) ||
        !measured_or_nan(row.fraction_of_copy)) {
      fail(target, at + ": accepted tokens_per_s, gbytes_per_s or fraction_of_copy that is neither nan nor finite >= 0");
    }
    for (const std::string* text : {&row.git_rev, &row.host, &row.date}) {
      if (has_control_character(*text)) fail(target, at + ": accepted a control character in git_rev, host or date");
    }
  }
}

void check_samples(std::string_view target, const std::vector<reports::Sample>& samples) {
  if (samples.empty()) fail(target, "accepted a file without data rows");
  std::set<std::pair<reports::BenchmarkKey, std::int64_t>> seen;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const reports::Sample& sample = samples[i];
    const std::string at = where(i, sample.key);
    check_key(target, at, sample.key);
    if (sample.repetition < 0) fail(target, at + ": accepted a repetition < 0");
    if (!seen.insert({sample.key, sample.repetition}).second) fail(target, at + ": accepted a repetition twice");
    if (!time_in_range(sample.time_ns)) fail(target, at + ": accepted a time outside (0, one day]");
  }
}

void check_verify_rows(std::string_view target, const std::vector<reports::VerifyRow>& rows) {
  if (rows.empty()) fail(target, "accepted a file without data rows");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const reports::VerifyRow& row = rows[i];
    const std::string at = ped::concat("row ", i);
    if (row.op.empty()) fail(target, at + ": accepted an empty op");
    for (const std::string* text : {&row.op, &row.variant, &row.dtype, &row.shape, &row.mask, &row.reference,
                                    &row.quantity, &row.seed}) {
      if (has_control_character(*text)) fail(target, at + ": accepted a control character in a text cell");
    }
    for (double error : {row.max_abs_err, row.max_rel_err, row.norm_rel_err}) {
      if (error < 0.0) fail(target, at + ": accepted a negative error");
    }
    if (!(std::isfinite(row.tolerance) && row.tolerance > 0.0)) fail(target, at + ": accepted a tolerance that is not finite > 0");
    // passed: every error finite and norm_rel_err <= tolerance.
    const bool verdict = std::isfinite(row.max_abs_err) && std::isfinite(row.max_rel_err) &&
                         std::isfinite(row.norm_rel_err) && row.norm_rel_err <= row.tolerance;
    if (row.passed != verdict) fail(target, at + ": accepted passed = " + (row.passed ? "true" : "false") +
                                                " against its numbers");
  }
}

void check_gbench_run(std::string_view target, const reports::GbenchRun& run) {
  for (const std::string* text : {&run.context.host, &run.context.date, &run.context.git_rev}) {
    if (has_control_character(*text)) fail(target, "accepted a control character in the context");
  }
  for (const std::string& skipped : run.skipped) {
    if (has_control_character(skipped)) fail(target, "a skipped-run note holds a control character");
  }
  std::set<std::pair<reports::BenchmarkKey, std::int64_t>> seen;
  for (std::size_t i = 0; i < run.samples.size(); ++i) {
    const reports::MeasuredSample& measured = run.samples[i];
    const std::string at = ped::concat("benchmarks sample ", i);
    check_key(target, at, measured.sample.key);
    for (const std::string* text : {&measured.sample.key.variant, &measured.sample.key.dtype, &measured.sample.key.mask,
                                    &measured.sample.key.lengths}) {
      if (text->find('/') != std::string::npos) fail(target, at + ": a name part holds '/'");
    }
    if (measured.sample.repetition < 0) fail(target, at + ": accepted a repetition_index < 0");
    if (!seen.insert({measured.sample.key, measured.sample.repetition}).second) {
      fail(target, at + ": accepted a repetition twice in one document");
    }
    if (!time_in_range(measured.sample.time_ns)) fail(target, at + ": accepted a time outside (0, one day]");
    if (!(std::isnan(measured.flop) || (std::isfinite(measured.flop) && measured.flop > 0.0))) {
      fail(target, at + ": accepted a flop counter that is not finite > 0");
    }
    if (!measured_or_nan(measured.peak_bytes)) fail(target, at + ": accepted a byte count that is not finite >= 0");
    if (!(std::isnan(measured.gemm_gflops) || (std::isfinite(measured.gemm_gflops) && measured.gemm_gflops > 0.0))) {
      fail(target, at + ": accepted a gemm_gflops counter that is not finite > 0");
    }
    for (const double counter : {measured.query_tokens, measured.kv_bytes, measured.copy_gbps}) {
      if (!(std::isnan(counter) || (std::isfinite(counter) && counter > 0.0))) {
        fail(target, at + ": accepted a query_tokens, kv_bytes or copy_gbps counter that is not finite > 0");
      }
    }
  }
}

void check_row_count(std::string_view target, std::string_view text, std::size_t rows) {
  // A NUL byte ends a line for the parser underneath: the rest of the line would be lost.
  if (text.find('\0') != std::string_view::npos) fail(target, "accepted a text holding a NUL byte");
  if (text.starts_with("\xef\xbb\xbf")) text.remove_prefix(3);
  std::size_t lines = 0;
  bool header_seen = false;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    const bool blank = line.find_first_not_of(" \t") == std::string_view::npos;
    if (blank || line.front() == '#') continue;
    if (header_seen) ++lines;
    header_seen = true;
  }
  if (lines != rows) fail(target, ped::concat("read ", rows, " rows from ", lines, " data lines"));
}

void check_benchmark_round_trip(std::string_view target, const std::vector<reports::BenchmarkRow>& rows) {
  const std::string text =
      written_or_fail(target, "format_benchmark_csv", [&] { return reports::format_benchmark_csv(rows); });
  std::vector<reports::BenchmarkRow> back;
  if (!read_or_refuse(target, "rewritten.csv", [&] { back = reports::parse_benchmark_csv(text, "rewritten.csv"); })) {
    fail(target, "parse_benchmark_csv refused what format_benchmark_csv wrote:\n" + text);
  }
  if (back.size() != rows.size()) fail(target, "the rewritten file holds another number of rows");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (!same_key_and_values(rows[i], back[i])) fail(target, where(i, rows[i].key) + " reads back changed:\n" + text);
  }
  if (written_or_fail(target, "format_benchmark_csv", [&] { return reports::format_benchmark_csv(back); }) != text) {
    fail(target, "writing the rows read back gives another text");
  }
}

void check_samples_round_trip(std::string_view target, const std::vector<reports::Sample>& samples) {
  const std::string text =
      written_or_fail(target, "format_samples_csv", [&] { return reports::format_samples_csv(samples); });
  std::vector<reports::Sample> back;
  if (!read_or_refuse(target, "rewritten.samples.csv",
                      [&] { back = reports::parse_samples_csv(text, "rewritten.samples.csv"); })) {
    fail(target, "parse_samples_csv refused what format_samples_csv wrote:\n" + text);
  }
  if (back.size() != samples.size()) fail(target, "the rewritten file holds another number of samples");
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (back[i].key != samples[i].key || back[i].repetition != samples[i].repetition ||
        !same_number(back[i].time_ns, samples[i].time_ns)) {
      fail(target, where(i, samples[i].key) + " reads back changed:\n" + text);
    }
  }
}

}  // namespace ped::fuzz
