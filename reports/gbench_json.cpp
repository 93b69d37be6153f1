#include "reports/gbench_json.hpp"

#include "core/errors.hpp"
#include "core/schemas.hpp"
#include "reports/statistics.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

namespace ped::reports {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double nan_value = std::numeric_limits<double>::quiet_NaN();

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

bool is_gbench_suffix(std::string_view token) {
  for (std::string_view flag : {"real_time", "manual_time", "process_time"}) {
    if (token == flag) return true;
  }
  for (std::string_view prefix : {"repeats:", "threads:", "iterations:", "min_time:", "min_warmup_time:"}) {
    if (token.starts_with(prefix)) return true;
  }
  return false;
}

// A numeric field: NaN when absent; InputError when present but not a number.
double number_field(const json& run, const char* field, const std::string& where) {
  const auto it = run.find(field);
  if (it == run.end()) return nan_value;
  if (!it->is_number()) throw_input_error(where, ": ", field, " is not a number");
  return it->get<double>();
}

// A text field: empty when absent or not a string.
std::string string_field(const json& object, const char* field) {
  const auto it = object.find(field);
  if (it == object.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

// A text field that goes into the CSV files: InputError when it holds a control character (a CSV
// line could not hold it, or would show it garbled). `where` ends with the field's path prefix.
std::string label_field(const json& object, const char* field, const std::string& where) {
  std::string text = string_field(object, field);
  if (!first_control_character(text).empty()) {
    throw_input_error(where, field, " '", printable(text), "' holds a control character (expected printable text)");
  }
  return text;
}

// The largest integer a JSON number (read as a double) holds exactly; also keeps the conversion to
// a 64-bit integer defined.
constexpr double max_exact_integer = 9007199254740992.0;  // 2^53

bool is_integer_in(double value, double low) {
  return value >= low && value <= max_exact_integer && value == std::floor(value);
}

double nanoseconds_per(const std::string& unit, const std::string& where) {
  if (unit == "ns") return 1.0;
  if (unit == "us") return 1e3;
  if (unit == "ms") return 1e6;
  if (unit == "s") return 1e9;
  throw_input_error(where, ": unknown time_unit '", printable(unit), "' (expected ns, us, ms or s)");
}

double median_of_finite(const std::vector<double>& values) {
  std::vector<double> finite;
  for (double v : values) {
    if (std::isfinite(v)) finite.push_back(v);
  }
  return finite.empty() ? nan_value : median(finite);
}

}  // namespace

std::optional<BenchmarkKey> parse_benchmark_name(std::string_view name, const std::string& where) {
  const std::vector<std::string_view> tokens = split(name, '/');
  if (tokens.empty() || tokens[0] != "attention") return std::nullopt;
  const auto fail = [&](auto... why) -> void {
    throw_input_error(where, ": benchmark name '", printable(name), "' ", why...,
                      " (scheme: attention/<variant>/<pass>/<dtype>/<mask>/B:<b>/H:<h>/N:<n>/d:<d>[/T:<t>])");
  };
  if (!first_control_character(name).empty()) fail("holds a control character");
  if (tokens.size() < 5) fail("has fewer than 5 '/'-separated parts");
  BenchmarkKey key;
  key.variant = tokens[1];
  key.pass = tokens[2];
  key.dtype = tokens[3];
  key.mask = tokens[4];
  for (std::size_t i = 1; i <= 4; ++i) {
    if (tokens[i].empty() || tokens[i].find(':') != std::string_view::npos) fail("has an empty or 'K:v' part ", i);
  }
  if (key.pass != "forward" && key.pass != "backward" && key.pass != "forward_backward") {
    fail("has pass '", key.pass, "', expected forward|backward|forward_backward");
  }
  for (std::size_t i = 5; i < tokens.size(); ++i) {
    const std::string_view token = tokens[i];
    if (is_gbench_suffix(token)) continue;
    const std::size_t colon = token.find(':');
    if (colon == std::string_view::npos) fail("has an unknown part '", token, "'");
    const std::string_view label = token.substr(0, colon);
    const std::string_view text = token.substr(colon + 1);
    if (label == "L") {  // the lengths profile: a text
      if (text.empty()) fail("has an empty lengths profile 'L:'");
      key.lengths = text;
      continue;
    }
    std::int64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value <= 0) {
      fail("has a non-positive or non-integer size '", token, "'");
    }
    if (label == "B") {
      key.batch = value;
    } else if (label == "H") {
      key.heads = value;
    } else if (label == "N") {
      key.seq_len = value;
    } else if (label == "d") {
      key.head_dim = value;
    } else if (label == "T") {
      key.threads = value;
    } else if (label == "Hkv") {
      key.heads_kv = value;
    } else if (label == "Nq") {
      key.seq_q = value;
    } else {
      fail("has an unknown size '", token, "' (known: B, H, Hkv, Nq, N, d, T, and L: the lengths profile)");
    }
  }
  return key;
}

GbenchRun parse_gbench_json(std::string_view text, const std::string& source) {
  json document;
  try {
    document = json::parse(text);
  } catch (const json::parse_error& error) {
    // The library's message quotes the bytes it last read, line breaks included.
    throw_input_error(source, ": not valid JSON (byte ", error.byte, "): ", printable(error.what()));
  } catch (const json::exception& error) {
    // A number too large for a double is reported as out_of_range, not as a parse_error.
    throw_input_error(source, ": not valid JSON: ", printable(error.what()));
  }
  if (!document.is_object() || !document.contains("benchmarks") || !document["benchmarks"].is_array()) {
    throw_input_error(source, ": not Google Benchmark JSON: no \"benchmarks\" array");
  }
  GbenchRun run;
  if (document.contains("context") && document["context"].is_object()) {
    const json& context = document["context"];
    const std::string where = concat(source, ": context.");
    run.context.host = label_field(context, "host_name", where);
    run.context.date = label_field(context, "date", where);
    run.context.git_rev = label_field(context, "git_rev", where);
    run.context.allocator = label_field(context, "allocator", where);
  }
  // (key, repetition_index) -> index of the run that gave it: the same repetition twice would count
  // as two samples.
  std::map<std::pair<BenchmarkKey, std::int64_t>, std::size_t> first_index;
  const json& benchmarks = document["benchmarks"];
  for (std::size_t index = 0; index < benchmarks.size(); ++index) {
    const json& entry = benchmarks[index];
    const std::string where = concat(source, ": benchmarks[", index, "]");
    if (!entry.is_object()) throw_input_error(where, ": not an object");
    const std::string run_type = string_field(entry, "run_type");
    if (run_type == "aggregate") continue;
    std::string name = string_field(entry, "run_name");
    if (name.empty()) name = string_field(entry, "name");
    if (name.empty()) throw_input_error(where, ": no \"name\"");
    const std::string shown = printable(name);
    bool errored = false;
    if (const auto it = entry.find("error_occurred"); it != entry.end()) {
      if (!it->is_boolean()) throw_input_error(where, ": error_occurred is not true or false");
      errored = it->get<bool>();
    }
    if (errored) {
      run.skipped.push_back(printable(concat(name, ": ", string_field(entry, "error_message"))));
      continue;
    }
    std::optional<BenchmarkKey> key = parse_benchmark_name(name, where);
    if (!key) {
      run.skipped.push_back(printable(concat(name, ": not an attention benchmark")));
      continue;
    }
    // Sizes the name leaves out may be counters (top-level numeric fields in the JSON).
    const auto size_from_counter = [&](std::int64_t& size, const char* counter) {
      if (size != 0) return;
      const double value = number_field(entry, counter, where);
      if (std::isnan(value)) {
        throw_input_error(where, ": benchmark '", name, "' gives no positive integer ", counter,
                          " (neither in the name nor as a counter)");
      }
      if (!is_integer_in(value, 1.0)) {
        throw_input_error(where, ": counter ", counter, " ", value, " of benchmark '", name,
                          "' is not an integer in [1, 2^53]");
      }
      size = static_cast<std::int64_t>(value);
    };
    size_from_counter(key->batch, "batch");
    size_from_counter(key->heads, "heads");
    size_from_counter(key->seq_len, "seq_len");
    size_from_counter(key->head_dim, "head_dim");
    size_from_counter(key->threads, "threads");
    canonicalize(*key);
    if (const std::optional<FieldProblem> problem = find_problem(*key)) {
      throw_input_error(where, ": benchmark '", shown, "': ", problem->what, " (", problem->column, ")");
    }

    MeasuredSample measured;
    measured.sample.key = std::move(*key);
    const double real_time = number_field(entry, "real_time", where);
    const std::string unit = entry.contains("time_unit") ? string_field(entry, "time_unit") : "ns";
    measured.sample.time_ns = real_time * nanoseconds_per(unit, where);
    if (!(std::isfinite(measured.sample.time_ns) && measured.sample.time_ns > 0.0 &&
          measured.sample.time_ns <= max_time_ns)) {
      throw_input_error(where, ": benchmark '", name, "' has real_time ", real_time, " ", unit,
                        ", expected a positive number up to ", max_time_ns, " ns (one day)");
    }
    const double repetition = number_field(entry, "repetition_index", where);
    if (!std::isnan(repetition) && !is_integer_in(repetition, 0.0)) {
      throw_input_error(where, ": repetition_index ", repetition, " is not an integer in [0, 2^53]");
    }
    measured.sample.repetition = std::isnan(repetition) ? 0 : static_cast<std::int64_t>(repetition);
    const auto [first, inserted] =
        first_index.emplace(std::pair{measured.sample.key, measured.sample.repetition}, index);
    if (!inserted) {
      throw_input_error(where, ": repetition ", measured.sample.repetition, " of ", benchmark_name(measured.sample.key),
                        " appears twice (first in benchmarks[", first->second, "])");
    }
    // Counters: FLOP and the GEMM ceiling are positive; byte counts are >= 0.
    const auto counter = [&](const char* field, const char* label, bool zero_allowed) {
      const double value = number_field(entry, field, where);
      if (!std::isnan(value) && !(std::isfinite(value) && (value > 0.0 || (zero_allowed && value == 0.0)))) {
        throw_input_error(where, ": ", label, field, " ", value, " is not a finite number ",
                          zero_allowed ? ">= 0" : "> 0");
      }
      return value;
    };
    measured.flop = counter("flop", "counter ", false);
    measured.peak_bytes = counter("max_bytes_used", "", true);
    if (std::isnan(measured.peak_bytes)) measured.peak_bytes = counter("peak_bytes", "counter ", true);
    measured.gemm_gflops = counter("gemm_gflops", "counter ", false);
    measured.query_tokens = counter("query_tokens", "counter ", false);
    measured.kv_bytes = counter("kv_bytes", "counter ", false);
    measured.copy_gbps = counter("copy_gbps", "counter ", false);
    for (const auto& [field, value] : entry.items()) {
      if (!field.starts_with("phase_")) continue;
      const std::string phase = field.substr(6);
      const bool named = !phase.empty() && std::all_of(phase.begin(), phase.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || c == '_';
      });
      if (!named) throw_input_error(where, ": counter ", printable(field), " is not named phase_[a-z_]+");
      if (!value.is_number()) throw_input_error(where, ": counter ", field, " is not a number");
      const double fraction = value.get<double>();
      if (!(std::isfinite(fraction) && fraction >= 0.0 && fraction <= 1.0)) {
        throw_input_error(where, ": counter ", field, " ", fraction, " is not a number in [0, 1]");
      }
      measured.phases.emplace_back(phase, fraction);
    }
    run.samples.push_back(std::move(measured));
  }
  return run;
}

GbenchRun read_gbench_json(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw_input_error(file.string(), ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().empty()) throw_input_error(file.string(), ":1: empty file");
  return parse_gbench_json(text.str(), file.string());
}

double model_flop(const BenchmarkKey& key) {
  if (key.variable_length()) return nan_value;  // the real pairs depend on the lengths: the flop counter
  const double n = static_cast<double>(key.seq_len);
  double forward = 4.0 * static_cast<double>(key.batch) * static_cast<double>(key.heads) *
                   static_cast<double>(key.queries()) * n * static_cast<double>(key.head_dim);
  if (key.mask == "causal") {
    if (key.decoding()) return nan_value;  // bottom-right causal with Nq != Nk: not half
    forward *= 0.5;
  } else if (key.mask != "none") {
    return nan_value;
  }
  if (key.pass == "forward") return forward;
  if (key.pass == "backward") return 2.5 * forward;
  if (key.pass == "forward_backward") return 3.5 * forward;
  return nan_value;
}

TidyBenchmarks tidy_benchmarks(std::span<const MeasuredSample> samples, const GbenchContext& context) {
  std::map<BenchmarkKey, std::vector<const MeasuredSample*>> by_key;
  for (const MeasuredSample& measured : samples) by_key[measured.sample.key].push_back(&measured);
  TidyBenchmarks tidy;
  for (const auto& [key, group] : by_key) {
    std::vector<double> times;
    std::vector<double> flops;
    std::vector<double> gemm;
    std::vector<double> tokens;
    std::vector<double> kv_bytes;
    std::vector<double> copy;
    double peak = nan_value;
    for (const MeasuredSample* measured : group) {
      Sample sample = measured->sample;
      sample.repetition = static_cast<std::int64_t>(times.size());
      tidy.samples.push_back(sample);
      times.push_back(measured->sample.time_ns);
      flops.push_back(measured->flop);
      gemm.push_back(measured->gemm_gflops);
      tokens.push_back(measured->query_tokens);
      kv_bytes.push_back(measured->kv_bytes);
      copy.push_back(measured->copy_gbps);
      if (std::isfinite(measured->peak_bytes) && (std::isnan(peak) || measured->peak_bytes > peak)) {
        peak = measured->peak_bytes;
      }
    }
    BenchmarkRow row;
    row.key = key;
    row.repetitions = static_cast<std::int64_t>(times.size());
    row.median_ns = median(times);
    row.min_ns = *std::min_element(times.begin(), times.end());
    row.max_ns = *std::max_element(times.begin(), times.end());
    double flop = median_of_finite(flops);
    if (!std::isfinite(flop)) flop = model_flop(key);
    row.gflops = flop / row.median_ns;
    row.peak_bytes = peak;
    const double ceiling = median_of_finite(gemm);
    row.fraction_of_gemm = row.gflops / ceiling;
    // Finite inputs can still divide to infinity (a huge FLOP count over a tiny time).
    if (std::isinf(row.gflops) || std::isinf(row.fraction_of_gemm)) {
      throw_input_error("benchmark ", benchmark_name(key), ": ", flop, " FLOP in ", row.median_ns, " ns at a ceiling of ",
                        ceiling, " GFLOP/s gives gflops ", row.gflops, " and fraction_of_gemm ", row.fraction_of_gemm,
                        ", expected finite numbers");
    }
    double query_tokens = median_of_finite(tokens);
    if (!std::isfinite(query_tokens) && !key.variable_length()) {
      query_tokens = static_cast<double>(key.batch) * static_cast<double>(key.queries());
    }
    row.tokens_per_s = query_tokens / row.median_ns * 1e9;
    row.gbytes_per_s = median_of_finite(kv_bytes) / row.median_ns;
    const double copy_ceiling = median_of_finite(copy);
    row.fraction_of_copy = row.gbytes_per_s / copy_ceiling;
    if (std::isinf(row.tokens_per_s) || std::isinf(row.gbytes_per_s) || std::isinf(row.fraction_of_copy)) {
      throw_input_error("benchmark ", benchmark_name(key), ": ", query_tokens, " query tokens and ",
                        median_of_finite(kv_bytes), " bytes of K and V in ", row.median_ns,
                        " ns at a copy bandwidth of ", copy_ceiling, " GB/s give tokens_per_s ", row.tokens_per_s,
                        ", gbytes_per_s ", row.gbytes_per_s, " and fraction_of_copy ", row.fraction_of_copy,
                        ", expected finite numbers");
    }
    row.git_rev = context.git_rev.empty() ? "unknown" : context.git_rev;
    row.host = context.host;
    row.date = context.date;
    // The in-run probe ran under glibc's default whatever the run's setting (core/schemas.hpp).
    row.allocator = key.variant.ends_with(schema::glibc_default_suffix) ? std::string(schema::glibc_default_allocator)
                                                                       : context.allocator;
    tidy.rows.push_back(std::move(row));
    std::map<std::string, std::vector<double>> phase_fractions;
    for (const MeasuredSample* measured : group) {
      for (const auto& [phase, fraction] : measured->phases) phase_fractions[phase].push_back(fraction);
    }
    for (const auto& [phase, fractions] : phase_fractions) {
      tidy.phases.push_back(PhaseRow{key, phase, median(fractions), 0});
    }
  }
  return tidy;
}

}  // namespace ped::reports
