#include "reports/compare.hpp"

#include "core/errors.hpp"
#include "core/schemas.hpp"
#include "reports/text_format.hpp"

#include <algorithm>
#include <cmath>
#include <map>

namespace ped::reports {
namespace fs = std::filesystem;

namespace {

struct Side {
  bool present = false;
  double csv_median_ns = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> samples;
};
using Pairing = std::map<BenchmarkKey, std::pair<Side, Side>>;

void check_options(const CompareOptions& options) {
  if (!(options.threshold >= 0.0)) throw_invalid("compare_benchmarks", "threshold ", options.threshold, " is negative");
  if (!(options.alpha > 0.0 && options.alpha < 1.0)) {
    throw_invalid("compare_benchmarks", "alpha ", options.alpha, " is not in (0, 1)");
  }
  if (options.min_repetitions < 2) {
    throw_invalid("compare_benchmarks", "min_repetitions ", options.min_repetitions, " is below 2");
  }
}

Comparison compare_pair(const BenchmarkKey& key, const Side& base, const Side& next, const CompareOptions& options) {
  Comparison c;
  c.key = key;
  if (!base.present || !next.present) {
    c.base_median_ns = c.new_median_ns = std::numeric_limits<double>::quiet_NaN();
    c.verdict = base.present ? Verdict::only_in_base : Verdict::only_in_new;
    c.note = base.present ? "missing from the new run" : "missing from the baseline";
    const Side& side = base.present ? base : next;
    (base.present ? c.base_median_ns : c.new_median_ns) = side.samples.empty() ? side.csv_median_ns : median(side.samples);
    c.ratio = std::numeric_limits<double>::quiet_NaN();
    return c;
  }
  c.base_samples = base.samples.size();
  c.new_samples = next.samples.size();
  c.base_median_ns = base.samples.empty() ? base.csv_median_ns : median(base.samples);
  c.new_median_ns = next.samples.empty() ? next.csv_median_ns : median(next.samples);
  c.ratio = c.new_median_ns / c.base_median_ns;
  if (c.base_samples >= 2 && c.new_samples >= 2) c.test = mann_whitney_u(base.samples, next.samples);

  const std::size_t fewest = std::min(c.base_samples, c.new_samples);
  if (fewest < options.min_repetitions) {
    c.verdict = Verdict::not_gated;
    if (fewest > 0) {
      c.note = concat("only ", fewest, " repetitions (need ", options.min_repetitions, ")");
    } else {
      c.note = c.base_samples == 0 && c.new_samples == 0 ? "no raw samples on either side"
               : c.base_samples == 0                       ? "no raw samples in base"
                                                           : "no raw samples in new";
    }
    return c;
  }
  const bool significant = c.test->p_value < options.alpha;
  if (significant && c.ratio > 1.0 + options.threshold) {
    c.verdict = Verdict::regressed;
  } else if (significant && c.ratio < 1.0 - options.threshold) {
    c.verdict = Verdict::improved;
  } else {
    c.verdict = Verdict::unchanged;
  }
  return c;
}

std::vector<Comparison> compare_pairing(const Pairing& pairing, const CompareOptions& options) {
  check_options(options);
  std::vector<Comparison> comparisons;
  for (const auto& [key, sides] : pairing) comparisons.push_back(compare_pair(key, sides.first, sides.second, options));
  return comparisons;
}

}  // namespace

BenchmarkSet read_benchmark_set(const fs::path& bench_csv, const std::optional<fs::path>& samples_file) {
  BenchmarkSet set;
  set.source = bench_csv;
  set.rows = read_benchmark_csv(bench_csv);
  const fs::path samples_path = samples_file.value_or(samples_path_for(bench_csv));
  std::error_code ignored;
  if (samples_file || fs::exists(samples_path, ignored)) {
    set.samples_source = samples_path;
    set.samples = read_samples_csv(samples_path);
    std::map<BenchmarkKey, std::size_t> count;
    for (const BenchmarkRow& row : set.rows) count[row.key] = 0;
    for (const Sample& sample : set.samples) {
      const auto it = count.find(sample.key);
      if (it == count.end()) {
        throw_input_error(samples_path.string(), ":", sample.line, ": sample of ", benchmark_name(sample.key),
                          ", which has no row in ", bench_csv.string());
      }
      ++it->second;
    }
    for (const BenchmarkRow& row : set.rows) {
      if (static_cast<std::int64_t>(count[row.key]) != row.repetitions) {
        throw_input_error(samples_path.string(), ": ", count[row.key], " samples of ", benchmark_name(row.key), ", but ",
                          bench_csv.string(), ":", row.line, " gives repetitions ", row.repetitions,
                          " (expected one sample per repetition)");
      }
    }
  }
  return set;
}

const char* to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::improved: return "improved";
    case Verdict::regressed: return "regressed";
    case Verdict::unchanged: return "unchanged";
    case Verdict::not_gated: return "not gated";
    case Verdict::only_in_base: return "only in base";
    case Verdict::only_in_new: return "only in new";
  }
  return "unknown";
}

std::vector<Comparison> compare_benchmarks(const BenchmarkSet& base, const BenchmarkSet& next,
                                           const CompareOptions& options) {
  Pairing pairing;
  const auto add = [&](const BenchmarkSet& set, bool is_base) {
    for (const BenchmarkRow& row : set.rows) {
      Side& side = is_base ? pairing[row.key].first : pairing[row.key].second;
      side.present = true;
      side.csv_median_ns = row.median_ns;
    }
    for (const Sample& sample : set.samples) {
      Side& side = is_base ? pairing[sample.key].first : pairing[sample.key].second;
      side.samples.push_back(sample.time_ns);
    }
  };
  add(base, true);
  add(next, false);
  return compare_pairing(pairing, options);
}

std::vector<Comparison> compare_samples(const std::vector<Sample>& base, const std::vector<Sample>& next,
                                        const CompareOptions& options) {
  Pairing pairing;
  for (const Sample& sample : base) {
    pairing[sample.key].first.present = true;
    pairing[sample.key].first.samples.push_back(sample.time_ns);
  }
  for (const Sample& sample : next) {
    pairing[sample.key].second.present = true;
    pairing[sample.key].second.samples.push_back(sample.time_ns);
  }
  return compare_pairing(pairing, options);
}

bool has_regression(const std::vector<Comparison>& comparisons) {
  return std::any_of(comparisons.begin(), comparisons.end(),
                     [](const Comparison& c) { return c.verdict == Verdict::regressed; });
}

GateCoverage gate_coverage(const std::vector<Comparison>& comparisons) {
  GateCoverage coverage;
  for (const Comparison& c : comparisons) {
    switch (c.verdict) {
      case Verdict::improved:
      case Verdict::regressed:
      case Verdict::unchanged: ++coverage.gated; break;
      case Verdict::not_gated:
        if (coverage.not_gated++ == 0) coverage.first_not_gated = &c;
        break;
      case Verdict::only_in_base:
      case Verdict::only_in_new: ++coverage.unmatched; break;
    }
  }
  return coverage;
}

std::string describe_incomplete_gate(const GateCoverage& coverage) {
  if (!coverage.incomplete()) return "";
  const std::size_t total = coverage.gated + coverage.not_gated + coverage.unmatched;
  if (coverage.not_gated == 0) {
    return concat("no benchmark was gated: all ", total, " are present on one side only");
  }
  return concat(coverage.not_gated, " of ", total, " benchmarks were not gated (first: ",
                benchmark_name(coverage.first_not_gated->key), ": ", coverage.first_not_gated->note,
                "), so the gate did not check them");
}

std::string format_comparison_table(const std::vector<Comparison>& comparisons, const CompareOptions& options) {
  std::size_t name_width = 9;
  for (const Comparison& c : comparisons) name_width = std::max(name_width, benchmark_name(c.key).size());
  char line[1024];
  std::string out;
  const auto row = [&](const std::string& name, const std::string& base, const std::string& next,
                       const std::string& change, const std::string& p, const std::string& n, const std::string& verdict) {
    std::snprintf(line, sizeof(line), "%-*s  %12s  %12s  %8s  %9s  %7s  %s\n", static_cast<int>(name_width),
                  name.c_str(), base.c_str(), next.c_str(), change.c_str(), p.c_str(), n.c_str(), verdict.c_str());
    out += line;
  };
  row("benchmark", "base median", "new median", "change", "p (U test)", "n", "verdict");
  std::map<Verdict, std::size_t> counts;
  for (const Comparison& c : comparisons) {
    ++counts[c.verdict];
    const std::string change = std::isnan(c.ratio) ? "" : concat(c.ratio >= 1.0 ? "+" : "", format_fixed(100.0 * (c.ratio - 1.0), 1), "%");
    std::string p = c.test ? format_significant(c.test->p_value, 3) : "";
    if (c.test && c.test->method == UTestMethod::normal_approximation) p += "*";
    const std::string n = concat(c.base_samples, "/", c.new_samples);
    // Upper case so a regression stands out in a CI log.
    const std::string name = c.verdict == Verdict::regressed ? "REGRESSED" : to_string(c.verdict);
    const std::string verdict = c.note.empty() ? name : concat(name, " (", c.note, ")");
    row(benchmark_name(c.key), format_duration_ns(c.base_median_ns), format_duration_ns(c.new_median_ns), change, p, n,
        verdict);
  }
  out += concat("\n", counts[Verdict::improved], " improved, ", counts[Verdict::regressed], " regressed, ",
                counts[Verdict::unchanged], " unchanged, ", counts[Verdict::not_gated], " not gated, ",
                counts[Verdict::only_in_base] + counts[Verdict::only_in_new], " unmatched",
                " (threshold ", format_fixed(100.0 * options.threshold, 1), "%, alpha ", options.alpha,
                ", two-sided Mann-Whitney U; * normal approximation, otherwise exact)\n");
  return out;
}

std::string format_comparison_csv(const std::vector<Comparison>& comparisons) {
  std::string out = schema::header_line(schema::comparison_columns);
  const double nan_value = std::numeric_limits<double>::quiet_NaN();
  for (const Comparison& c : comparisons) {
    const BenchmarkKey& k = c.key;
    out += concat(csv_cell(k.variant), ",", csv_cell(k.pass), ",", csv_cell(k.dtype), ",", k.batch, ",", k.heads, ",",
                  k.seq_len, ",", k.head_dim, ",", csv_cell(k.mask), ",", k.threads, ",",
                  format_number(c.base_median_ns), ",", format_number(c.new_median_ns), ",", format_number(c.ratio), ",",
                  format_number(c.test ? c.test->p_value : nan_value), ",",
                  c.test ? (c.test->method == UTestMethod::exact ? "exact" : "normal_approximation") : "", ",",
                  c.base_samples, ",", c.new_samples, ",", csv_cell(to_string(c.verdict)), ",", csv_cell(c.note), ",",
                  k.kv_heads(), ",", k.queries(), ",", csv_cell(k.lengths), "\n");
  }
  return out;
}

}  // namespace ped::reports
