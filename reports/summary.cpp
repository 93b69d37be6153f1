#include "reports/summary.hpp"

#include "core/atomic_file.hpp"
#include "core/errors.hpp"
#include "reports/fits.hpp"
#include "core/process.hpp"
#include "core/schemas.hpp"
#include "reports/text_format.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <tuple>

namespace ped::reports {
namespace fs = std::filesystem;

namespace {

constexpr double nan_value = std::numeric_limits<double>::quiet_NaN();

// series -> variant -> rows sorted by N
using SeriesTable = std::map<SeriesKey, std::map<std::string, std::vector<const BenchmarkRow*>>>;

SeriesTable series_table(const std::vector<BenchmarkRow>& rows) {
  SeriesTable table;
  for (const BenchmarkRow& row : rows) table[series_of(row.key)][row.key.variant].push_back(&row);
  for (auto& [series, variants] : table) {
    for (auto& [variant, curve] : variants) {
      std::sort(curve.begin(), curve.end(),
                [](const BenchmarkRow* a, const BenchmarkRow* b) { return a->key.seq_len < b->key.seq_len; });
    }
  }
  return table;
}

// Keeps letters, digits, '-' and '.'; anything else becomes '_' (file names from mask names).
std::string file_token(const std::string& text) {
  std::string out;
  for (char c : text) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
  return out;
}

std::string series_file_stem(const SeriesKey& s) {
  return concat(file_token(s.pass), "_", file_token(s.dtype), "_", file_token(s.mask), "_d", s.head_dim, "_B", s.batch,
                "_H", s.heads, s.heads_kv != 0 ? concat("_Hkv", s.heads_kv) : std::string(),
                s.seq_q != 0 ? concat("_Nq", s.seq_q) : std::string(),
                s.lengths.empty() ? std::string() : concat("_L", file_token(s.lengths)), "_T", s.threads);
}

std::string markdown_cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

// gnuplot single-quoted string: '' is a quote, nothing else is special.
std::string gnuplot_string(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

struct Figure {
  std::string file_name;  // in out_dir
  std::string caption;
  std::string script;     // gnuplot commands after `set output`
};

struct Curve {
  std::string variant;
  std::vector<std::pair<double, double>> points;  // (N, value), value finite and positive
};

std::string figure_script(const std::string& title, const std::string& x_label, const std::string& y_label,
                          bool log_y, const std::vector<Curve>& curves) {
  std::string script;
  for (std::size_t k = 0; k < curves.size(); ++k) {
    script += concat("$curve", k, " << EOD\n");
    for (const auto& [n, value] : curves[k].points) script += concat(format_number(n), " ", format_number(value), "\n");
    script += "EOD\n";
  }
  script += concat("set title ", gnuplot_string(title), "\n");
  script += concat("set xlabel ", gnuplot_string(x_label), "\n");
  script += concat("set ylabel ", gnuplot_string(y_label), "\n");
  script += "set logscale x 2\n";
  script += log_y ? "set logscale y 10\n" : "unset logscale y\n";
  script += "set grid\nset key left top\nset format x '%g'\nset format y '%g'\n";
  script += "plot ";
  for (std::size_t k = 0; k < curves.size(); ++k) {
    script += concat(k == 0 ? "" : ", ", "$curve", k, " using 1:2 with linespoints pointtype 7 title ",
                     gnuplot_string(curves[k].variant));
  }
  script += "\n";
  return script;
}

// Figures of one series: median time (log-log), peak memory (log-log), GFLOP/s (log N), and for a
// decoding series query tokens per second and the fraction of the copy bandwidth; a figure whose
// quantity no variant reports is left out.
std::vector<Figure> series_figures(const SeriesKey& series,
                                   const std::map<std::string, std::vector<const BenchmarkRow*>>& variants,
                                   const std::string& extension) {
  struct Quantity {
    const char* stem;
    const char* caption;
    const char* y_label;
    bool log_y;
    double (*value)(const BenchmarkRow&);
    bool decoding_only;
  };
  static const Quantity quantities[] = {
      {"time", "median time vs N", "median time (ms)", true, [](const BenchmarkRow& r) { return r.median_ns / 1e6; },
       false},
      {"memory", "peak memory vs N", "peak heap (MiB)", true,
       [](const BenchmarkRow& r) { return r.peak_bytes / (1024.0 * 1024.0); }, false},
      {"gflops", "GFLOP/s vs N", "GFLOP/s", false, [](const BenchmarkRow& r) { return r.gflops; }, false},
      {"tokens", "query tokens per second vs N", "query tokens / s", true,
       [](const BenchmarkRow& r) { return r.tokens_per_s; }, true},
      {"bandwidth", "fraction of the copy bandwidth vs N", "K, V bytes read / s over copy bandwidth", false,
       [](const BenchmarkRow& r) { return r.fraction_of_copy; }, true},
  };
  const bool decoding = series.seq_q != 0;
  std::vector<Figure> figures;
  for (const Quantity& quantity : quantities) {
    if (quantity.decoding_only && !decoding) continue;
    std::vector<Curve> curves;
    for (const auto& [variant, curve] : variants) {
      Curve c{variant, {}};
      for (const BenchmarkRow* row : curve) {
        const double value = quantity.value(*row);
        if (std::isfinite(value) && value > 0.0) c.points.emplace_back(static_cast<double>(row->key.seq_len), value);
      }
      if (!c.points.empty()) curves.push_back(std::move(c));
    }
    if (curves.empty()) continue;
    Figure figure;
    figure.file_name = concat(quantity.stem, "_", series_file_stem(series), ".", extension);
    figure.caption = concat(quantity.caption, ": ", describe(series));
    figure.script = figure_script(figure.caption, decoding ? "keys Nk (N)" : "sequence length N", quantity.y_label,
                                  quantity.log_y, curves);
    figures.push_back(std::move(figure));
  }
  return figures;
}

// Renders every figure with one gnuplot run into temp files reserved in `staged`. Returns "" on
// success, otherwise why the plots were skipped (and their temps are discarded).
std::string render_figures(const std::vector<Figure>& figures, const SummaryOptions& options, StagedFiles& staged) {
  if (figures.empty()) return "no plottable data";
  std::string terminal;
  if (options.plot_format == "png") {
    terminal = "set terminal pngcairo size 800,520 noenhanced font 'sans,10'\n";
  } else if (options.plot_format == "svg") {
    terminal = "set terminal svg size 800,520 noenhanced font 'sans,10'\n";
  } else {
    throw_invalid("render_figures", "plot format '", options.plot_format, "' is not png or svg");
  }
  std::vector<fs::path> temps;
  std::string script = terminal;
  for (const Figure& figure : figures) {
    const fs::path temp = staged.reserve(options.out_dir / figure.file_name);
    temps.push_back(temp);
    script += concat("reset\n", "set output ", gnuplot_string(temp.string()), "\n", figure.script);
  }
  script += "unset output\n";

  TempDirectory scratch("ped-report-gnuplot-");
  const fs::path script_file = scratch.path() / "figures.gp";
  const fs::path log_file = scratch.path() / "gnuplot.log";
  {
    std::ofstream out(script_file);
    out << script;
    if (!out) throw std::runtime_error(concat("render_figures: cannot write ", script_file));
  }
  const ProcessResult result =
      run_process({options.gnuplot, script_file.string()}, {std::nullopt, log_file, std::nullopt, true});
  std::string note;
  if (!result.started) {
    note = concat("gnuplot not available (", result.error, ")");
  } else if (result.exit_code != 0) {
    std::ifstream log(log_file);
    std::string first_line;
    std::getline(log, first_line);
    note = concat("gnuplot exited with status ", result.exit_code, ": ", first_line);
  } else {
    for (const fs::path& temp : temps) {
      std::error_code ignored;
      if (fs::file_size(temp, ignored) == 0) note = concat("gnuplot wrote nothing to ", temp);
    }
  }
  if (!note.empty()) {
    for (const fs::path& temp : temps) staged.discard(temp);
  }
  return note;
}

std::string join_distinct(const std::vector<BenchmarkRow>& rows, std::string BenchmarkRow::*field) {
  std::set<std::string> values;
  for (const BenchmarkRow& row : rows) values.insert(row.*field);
  std::string out;
  for (const std::string& value : values) out += (out.empty() ? "" : ", ") + (value.empty() ? "(empty)" : value);
  return out;
}

// The LibTorch contenders the speed-up compares against: every libtorch_ variant but the allocator probe.
bool is_libtorch_baseline(const std::string& variant) {
  return variant.starts_with(schema::libtorch_prefix) && !variant.ends_with(schema::glibc_default_suffix);
}

// The fastest LibTorch baseline of `key` (its variant ignored) among `rows`, or nullptr.
using FastestLibTorch = std::map<BenchmarkKey, const BenchmarkRow*>;  // key with an empty variant -> fastest row
FastestLibTorch fastest_libtorch(const std::vector<BenchmarkRow>& rows) {
  FastestLibTorch fastest;
  for (const BenchmarkRow& row : rows) {
    if (!is_libtorch_baseline(row.key.variant)) continue;
    BenchmarkKey key = row.key;
    key.variant.clear();
    const BenchmarkRow*& best = fastest[key];
    if (best == nullptr || row.median_ns < best->median_ns) best = &row;
  }
  return fastest;
}

std::string benchmark_section(const std::vector<BenchmarkRow>& rows, const SeriesTable& table,
                              const std::map<SeriesKey, std::vector<Figure>>& figures_of, bool plots_made) {
  const FastestLibTorch fastest = fastest_libtorch(rows);
  const auto fastest_of = [&](const BenchmarkRow& row) -> const BenchmarkRow* {
    BenchmarkKey key = row.key;
    key.variant.clear();
    const auto it = fastest.find(key);
    return it == fastest.end() ? nullptr : it->second;
  };
  std::string md = "## Benchmarks\n\n";
  md += "Median of the repetitions; speed-up = median time of the fastest LibTorch contender of this run (variants "
        "`libtorch_*`, the allocator probe `*_glibc_default` left out) for the same pass, dtype, mask, head_dim, B, "
        "H, threads, H_kv, Nq, lengths profile and N / median time of the variant (named in the column when one LibTorch contender is the "
        "fastest throughout the table, else in each cell); fraction of GEMM = GFLOP/s over the in-run SGEMM GFLOP/s "
        "at the same thread count.\n\n";
  for (const auto& [series, variants] : table) {
    std::set<std::string> fastest_names;
    for (const auto& [variant, curve] : variants) {
      for (const BenchmarkRow* row : curve) {
        if (const BenchmarkRow* best = fastest_of(*row)) fastest_names.insert(best->key.variant);
      }
    }
    const bool one_fastest = fastest_names.size() == 1;
    md += concat("### ", describe(series), "\n\n");
    md += concat("| variant | N | median | min – max | reps | GFLOP/s | peak memory | speed-up vs fastest LibTorch",
                 one_fastest ? concat(" (", markdown_cell(*fastest_names.begin()), ")") : std::string(),
                 " | fraction of GEMM |\n");
    md += "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& [variant, curve] : variants) {
      for (const BenchmarkRow* row : curve) {
        const BenchmarkRow* best = fastest_of(*row);
        const std::string speedup =
            best == nullptr ? "n/a"
                            : concat(format_fixed(best->median_ns / row->median_ns, 2), "×",
                                     one_fastest ? std::string() : concat(" vs ", markdown_cell(best->key.variant)));
        md += concat("| ", markdown_cell(variant), " | ", row->key.seq_len, " | ", format_duration_ns(row->median_ns),
                     " | ", format_duration_ns(row->min_ns), " – ", format_duration_ns(row->max_ns), " | ",
                     row->repetitions, " | ", format_fixed(row->gflops, 2), " | ", format_bytes(row->peak_bytes), " | ",
                     speedup, " | ", format_fixed(row->fraction_of_gemm, 3), " |\n");
      }
    }
    md += "\n";
    const auto figures = figures_of.find(series);
    if (plots_made && figures != figures_of.end()) {
      for (const Figure& figure : figures->second) md += concat("![", figure.caption, "](", figure.file_name, ")\n");
      md += "\n";
    }
  }
  return md;
}

// The heap allocator the run used (the CSV's allocator column) and, from the in-run probe, what
// glibc's default allocator costs LibTorch on this machine.
std::string allocator_section(const std::vector<BenchmarkRow>& rows) {
  std::set<std::string> settings;
  std::map<BenchmarkKey, const BenchmarkRow*> by_key;
  std::vector<const BenchmarkRow*> probes;
  for (const BenchmarkRow& row : rows) {
    by_key[row.key] = &row;
    if (row.key.variant.ends_with(schema::glibc_default_suffix)) {
      probes.push_back(&row);
    } else {
      settings.insert(row.allocator);
    }
  }
  std::string md = "## Allocator\n\n";
  std::string listed;
  for (const std::string& setting : settings) {
    listed += concat(listed.empty() ? "" : ", ", setting.empty() ? "not recorded" : concat("`", markdown_cell(setting), "`"));
  }
  md += concat("Heap allocator setting of the run: ", listed.empty() ? "not recorded" : listed, ". ");
  md += "`tuned`: bench set glibc's `mallopt` M_MMAP_THRESHOLD and M_TRIM_THRESHOLD to 2³¹−1 at start, for every "
        "contender alike, so freed memory stays in the process for the next call, as a tuned deployment keeps it "
        "(PyTorch's CPU guides use jemalloc or tcmalloc for this). `default`: glibc untouched. Not recorded: a file "
        "from before bench recorded it.\n\n";
  md += "Why it matters: LibTorch's math path allocates several B·H·N² float tensors per call. By default glibc "
        "serves every block of 32 MiB or more with a fresh `mmap` and unmaps it on free, so each call pays "
        "first-touch page faults on all of them again (costly on a virtual machine) and the time measures the "
        "kernel's page-fault handler as much as attention (so does any contender that allocates large blocks per "
        "call, e.g. naive's (N, N) probabilities).\n\n";
  std::string table;
  const BenchmarkRow* headline_probe = nullptr;
  double headline_ratio = 0.0;
  for (const BenchmarkRow* probe : probes) {
    BenchmarkKey base_key = probe->key;
    base_key.variant.resize(base_key.variant.size() - schema::glibc_default_suffix.size());
    const auto base = by_key.find(base_key);
    if (base == by_key.end()) continue;
    const double ratio = probe->median_ns / base->second->median_ns;
    table += concat("| ", markdown_cell(base_key.variant), " | ", markdown_cell(probe->key.pass), " | ",
                    markdown_cell(probe->key.mask), " | ", probe->key.head_dim, " | ", probe->key.seq_len, " | ",
                    format_duration_ns(base->second->median_ns), " | ", format_duration_ns(probe->median_ns), " | ",
                    format_fixed(ratio, 2), "× |\n");
    if (headline_probe == nullptr || probe->key.seq_len > headline_probe->key.seq_len ||
        (probe->key.seq_len == headline_probe->key.seq_len && ratio > headline_ratio)) {
      headline_probe = probe;
      headline_ratio = ratio;
    }
  }
  if (headline_probe == nullptr) {
    md += "No in-run measurement of glibc's default allocator in this file (it comes from bench's probe: a tuned run "
          "with `--allocator-probe on` and `libtorch_sdpa` among the contenders).\n\n";
    return md;
  }
  const std::string base_name =
      headline_probe->key.variant.substr(0, headline_probe->key.variant.size() - schema::glibc_default_suffix.size());
  md += concat("Measured in this run: under glibc's default allocator `", markdown_cell(base_name), "` took ",
               format_fixed(headline_ratio, 2), "× as long at N = ", headline_probe->key.seq_len, " (",
               markdown_cell(headline_probe->key.pass), ", ", markdown_cell(headline_probe->key.mask), ", d=",
               headline_probe->key.head_dim, ", B=", headline_probe->key.batch, ", H=", headline_probe->key.heads,
               ", T=", headline_probe->key.threads, "). The probe (`", markdown_cell(headline_probe->key.variant),
               "`) runs the same contender with glibc's default behaviour for blocks of 32 MiB and more restored for "
               "its benchmark alone (mallopt M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD 64 MiB, malloc_trim first), "
               "then the tuned setting again:\n\n");
  md += "| contender | pass | mask | d | N | tuned | glibc default | default / tuned |\n";
  md += "|---|---|---|---:|---:|---:|---:|---:|\n";
  md += table + "\n";
  return md;
}

std::string fits_section(const std::vector<FitRow>& fits) {
  std::string md = "## Complexity fits\n\n";
  md += "Least-squares slope of log(median time) and log(peak memory) against log(N): the empirical exponent "
        "(2 for quadratic). All fits and crossings are in `fits.csv`.\n\n";
  md += "| series | variant | time exponent | R² | memory exponent | R² | points | N range |\n";
  md += "|---|---|---:|---:|---:|---:|---:|---|\n";
  std::map<std::pair<SeriesKey, std::string>, std::pair<const FitRow*, const FitRow*>> by_curve;
  for (const FitRow& fit : fits) {
    if (fit.kind != "fit") continue;
    auto& slot = by_curve[{fit.series, fit.variant}];
    (fit.quantity == "time_ns" ? slot.first : slot.second) = &fit;
  }
  for (const auto& [curve, pair] : by_curve) {
    const FitRow* time = pair.first;
    const FitRow* memory = pair.second;
    const FitRow* any = time ? time : memory;
    md += concat("| ", markdown_cell(describe(curve.first)), " | ", markdown_cell(curve.second), " | ",
                 time ? format_fixed(time->slope, 3) : "n/a", " | ", time ? format_fixed(time->r_squared, 4) : "n/a",
                 " | ", memory ? format_fixed(memory->slope, 3) : "n/a", " | ",
                 memory ? format_fixed(memory->r_squared, 4) : "n/a", " | ", any->points, " | ",
                 format_significant(any->n_min, 6), "–", format_significant(any->n_max, 6), " |\n");
  }
  if (by_curve.empty()) md += "| (no variant was measured at two or more N) | | | | | | | |\n";
  md += "\n";
  std::string crossings;
  for (const FitRow& fit : fits) {
    if (fit.kind != "crossover") continue;
    crossings += concat("- ", describe(fit.series), ": `", fit.variant, "` overtakes `", fit.other_variant,
                        "` at N ≈ ", format_significant(fit.crossover_n, 4), "\n");
  }
  md += crossings.empty() ? "No crossovers in median time within the measured N.\n\n" : concat("Crossovers (median time):\n\n", crossings, "\n");
  return md;
}

// The phases of AttentionOptions::phases (variants/attention.hpp) in the kernels' order, then `other`;
// a phase name not listed here goes after them, alphabetically.
constexpr const char* kPhaseOrder[] = {"score_gemm", "mask",    "softmax", "value_gemm", "dv_gemm", "dp_gemm",
                                       "softmax_grad", "dq_gemm", "dk_gemm", "dominated", "other"};

std::size_t phase_rank(const std::string& phase) {
  const auto it = std::find(std::begin(kPhaseOrder), std::end(kPhaseOrder), phase);
  return static_cast<std::size_t>(it - std::begin(kPhaseOrder));
}

}  // namespace

std::string time_split_section(const std::vector<PhaseRow>& phases) {
  if (phases.empty()) return {};
  // series -> (variant, N) -> phase -> fraction
  std::map<SeriesKey, std::map<std::pair<std::string, std::int64_t>, std::map<std::string, double>>> table;
  for (const PhaseRow& row : phases) table[series_of(row.key)][{row.key.variant, row.key.seq_len}][row.phase] = row.fraction;
  std::string md = "## Where the time goes\n\n";
  md += "Share of each phase in one extra call of the benchmark's pass, timed phase by phase after its timed "
        "iterations: the phase's time summed over threads / (threads × the call's wall time), in percent. "
        "score GEMM S = s Q Kᵀ (recomputed in backward), mask: hidden pairs of partial tiles, softmax: row max, exp "
        "and sums (backward: P from the row stats), value GEMM O += P V, dV = Pᵀ dO, dP = dO Vᵀ, dS = P ∘ (dP − D), "
        "dQ = s dS K, dK = s dSᵀ Q, dominated: rows dominated by one key; other: the rest (checks, D = rowsum(dO ∘ O), "
        "threads waiting). Only variants that time their phases are listed.\n\n";
  for (const auto& [series, curves] : table) {
    std::set<std::string> seen;
    for (const auto& [curve, fractions] : curves) {
      for (const auto& [phase, fraction] : fractions) seen.insert(phase);
    }
    std::vector<std::string> columns(seen.begin(), seen.end());
    std::stable_sort(columns.begin(), columns.end(),
                     [](const std::string& a, const std::string& b) { return phase_rank(a) < phase_rank(b); });
    // A phase no benchmark of the series spends time in (say dominated) would be a column of zeros.
    std::erase_if(columns, [&](const std::string& phase) {
      for (const auto& [curve, fractions] : curves) {
        const auto it = fractions.find(phase);
        if (it != fractions.end() && it->second > 0.0) return false;
      }
      return true;
    });
    md += concat("### ", describe(series), "\n\n| variant | N |");
    for (const std::string& phase : columns) md += concat(" ", markdown_cell(phase), " |");
    md += "\n|---|---:|";
    for (std::size_t c = 0; c < columns.size(); ++c) md += "---:|";
    md += "\n";
    for (const auto& [curve, fractions] : curves) {
      md += concat("| ", markdown_cell(curve.first), " | ", curve.second, " |");
      for (const std::string& phase : columns) {
        const auto it = fractions.find(phase);
        md += concat(" ", it == fractions.end() ? std::string("–") : format_fixed(100.0 * it->second, 1), " |");
      }
      md += "\n";
    }
    md += "\n";
  }
  return md;
}

namespace {

std::string verify_section(const std::vector<VerifyRow>& rows, const fs::path& source) {
  struct Group {
    std::size_t rows = 0;
    std::size_t failures = 0;
    const VerifyRow* worst = nullptr;
  };
  std::map<std::tuple<std::string, std::string, std::string, std::string>, Group> groups;
  std::size_t failures = 0;
  for (const VerifyRow& row : rows) {
    Group& group = groups[{row.op, row.variant, row.dtype, row.reference}];
    ++group.rows;
    if (!row.passed) {
      ++group.failures;
      ++failures;
    }
    // A NaN error is the worst there is: a NaN gradient is the failure to look at first.
    const auto worse = [](const VerifyRow& a, const VerifyRow* b) {
      if (b == nullptr) return true;
      if (std::isnan(b->norm_rel_err)) return false;
      return std::isnan(a.norm_rel_err) || a.norm_rel_err > b->norm_rel_err;
    };
    if (worse(row, group.worst)) group.worst = &row;
  }
  std::string md = "## Verification\n\n";
  md += concat("From `", source.filename().string(), "`: ", rows.size(), " comparisons, ", failures, " failed.\n\n");
  md += "| op | variant | dtype | reference | rows | failures | worst norm_rel_err | tolerance | at (quantity, shape, mask) |\n";
  md += "|---|---|---|---|---:|---:|---:|---:|---|\n";
  for (const auto& [id, group] : groups) {
    const auto& [op, variant, dtype, reference] = id;
    const VerifyRow& worst = *group.worst;
    md += concat("| ", markdown_cell(op), " | ", markdown_cell(variant.empty() ? "–" : variant), " | ",
                 markdown_cell(dtype), " | ", markdown_cell(reference), " | ", group.rows, " | ", group.failures,
                 group.failures > 0 ? " ❌" : "", " | ", format_significant(worst.norm_rel_err, 3), " | ",
                 format_significant(worst.tolerance, 3), " | ", markdown_cell(worst.quantity), ", ",
                 markdown_cell(worst.shape), ", ", markdown_cell(worst.mask.empty() ? "–" : worst.mask), " |\n");
  }
  md += "\n";
  if (failures > 0) {
    constexpr std::size_t listed = 20;
    md += concat("Failures", failures > listed ? concat(" (first ", listed, ")") : "", ":\n\n");
    std::size_t shown = 0;
    for (const VerifyRow& row : rows) {
      if (row.passed || shown == listed) continue;
      ++shown;
      md += concat("- line ", row.line, ": ", row.op, row.variant.empty() ? "" : "/" + row.variant, " ", row.dtype, " ",
                   row.shape, " mask ", row.mask.empty() ? "–" : row.mask, " vs ", row.reference, ", ", row.quantity,
                   ": norm_rel_err ", format_significant(row.norm_rel_err, 3), " > tolerance ",
                   format_significant(row.tolerance, 3), " (max_abs_err ", format_significant(row.max_abs_err, 3),
                   ", seed ", row.seed, ")\n");
    }
    md += "\n";
  }
  return md;
}

}  // namespace

std::string feature_sections(const std::vector<BenchmarkRow>& rows, const std::vector<FitRow>& fits) {
  const FastestLibTorch fastest = fastest_libtorch(rows);
  // "1.80× vs libtorch_sdpa", or n/a without a LibTorch row of the same key.
  const auto speedup = [&](const BenchmarkRow& row) -> std::string {
    BenchmarkKey key = row.key;
    key.variant.clear();
    const auto it = fastest.find(key);
    if (it == fastest.end()) return "n/a";
    return concat(format_fixed(it->second->median_ns / row.median_ns, 2), "× vs ", markdown_cell(it->second->key.variant));
  };
  std::map<BenchmarkKey, const BenchmarkRow*> by_key;
  for (const BenchmarkRow& row : rows) by_key[row.key] = &row;
  // Rows of one kind in a stable order: series, then variant, then N.
  const auto select = [&](auto&& wanted) {
    std::vector<const BenchmarkRow*> out;
    for (const BenchmarkRow& row : rows) {
      if (wanted(row.key)) out.push_back(&row);
    }
    std::sort(out.begin(), out.end(), [](const BenchmarkRow* a, const BenchmarkRow* b) {
      return std::tuple(series_of(a->key), a->key.variant, a->key.seq_len) <
             std::tuple(series_of(b->key), b->key.variant, b->key.seq_len);
    });
    return out;
  };
  std::string md;

  const std::vector<const BenchmarkRow*> grouped =
      select([](const BenchmarkKey& k) { return k.grouped() && !k.decoding() && !k.variable_length(); });
  if (!grouped.empty()) {
    md += "## Grouped-query attention\n\n";
    md += "H query heads share H_kv key/value heads (query head h reads head h / (H / H_kv)). GFLOP/s count the "
          "FLOP of every query head (4 d per visible pair and head); \"vs H_kv = H\" is this time over the same "
          "variant's time with as many key/value heads as query heads in this run (n/a without that row). LibTorch "
          "contenders expand K and V to H heads with repeat_interleave inside the timed call (LibTorch 1.13's SDPA "
          "has no enable_gqa).\n\n";
    md += "| series | variant | N | median | GFLOP/s | speed-up vs fastest LibTorch | time vs H_kv = H |\n";
    md += "|---|---|---:|---:|---:|---:|---:|\n";
    for (const BenchmarkRow* row : grouped) {
      BenchmarkKey plain = row->key;
      plain.heads_kv = 0;
      const auto match = by_key.find(plain);
      md += concat("| ", markdown_cell(describe(series_of(row->key))), " | ", markdown_cell(row->key.variant), " | ",
                   row->key.seq_len, " | ", format_duration_ns(row->median_ns), " | ", format_fixed(row->gflops, 2), " | ",
                   speedup(*row), " | ",
                   match == by_key.end() ? std::string("n/a")
                                         : concat(format_fixed(row->median_ns / match->second->median_ns, 2), "×"),
                   " |\n");
    }
    md += "\n";
  }

  const std::vector<const BenchmarkRow*> varlen = select([](const BenchmarkKey& k) { return k.variable_length(); });
  if (!varlen.empty()) {
    md += "## Variable-length batch\n\n";
    md += "B sequences of the lengths the profile draws (bench/bench_config.hpp: one sequence of N tokens, the "
          "others drawn from the profile's seed), in the padded (B, H, N, d) layout. Query tokens per second and "
          "GFLOP/s count the real tokens and the visible pairs within each sequence only, never the padding; "
          "LibTorch contenders compute the padded batch with an additive (B, 1, N, N) mask that hides the padding "
          "keys and, under causal, the future (what a LibTorch user writes), so their time includes the padding.\n\n";
    md += "| series | variant | N (padded) | median | query tokens/s | GFLOP/s | speed-up vs fastest LibTorch |\n";
    md += "|---|---|---:|---:|---:|---:|---:|\n";
    for (const BenchmarkRow* row : varlen) {
      md += concat("| ", markdown_cell(describe(series_of(row->key))), " | ", markdown_cell(row->key.variant), " | ",
                   row->key.seq_len, " | ", format_duration_ns(row->median_ns), " | ",
                   format_significant(row->tokens_per_s, 4), " | ", format_fixed(row->gflops, 2), " | ", speedup(*row),
                   " |\n");
    }
    md += "\n";
  }

  const std::vector<const BenchmarkRow*> decoding = select([](const BenchmarkKey& k) { return k.decoding(); });
  if (!decoding.empty()) {
    std::map<std::pair<SeriesKey, std::string>, const FitRow*> time_fit;
    for (const FitRow& fit : fits) {
      if (fit.kind == "fit" && fit.quantity == "time_ns") time_fit[{fit.series, fit.variant}] = &fit;
    }
    md += "## Decoding\n\n";
    md += "Nq new queries against a cache of N = Nk keys (causal: the queries are the last Nq positions), forward "
          "only. Decoding reads every key and value once for little arithmetic, so it is bound by memory bandwidth: "
          "K, V GB/s = bytes of K and V (2 B H_kv Nk d elements, each counted once) / median time, and fraction of "
          "copy = that over the in-run memory copy bandwidth (bench's copy ceiling: read + write bytes of a copy far "
          "beyond the last-level cache per second, at the run's thread count). Query tokens per second = B Nq / "
          "median time. The time exponent is the slope of log(time) against log(Nk) over the series (1: linear).\n\n";
    md += "| series | variant | Nk | median | query tokens/s | K, V GB/s | fraction of copy | speed-up vs fastest LibTorch | "
          "time exponent (Nk) |\n";
    md += "|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const BenchmarkRow* row : decoding) {
      const auto fit = time_fit.find({series_of(row->key), row->key.variant});
      md += concat("| ", markdown_cell(describe(series_of(row->key))), " | ", markdown_cell(row->key.variant), " | ",
                   row->key.seq_len, " | ", format_duration_ns(row->median_ns), " | ",
                   format_significant(row->tokens_per_s, 4), " | ", format_fixed(row->gbytes_per_s, 2), " | ",
                   format_fixed(row->fraction_of_copy, 3), " | ", speedup(*row), " | ",
                   fit == time_fit.end() ? std::string("n/a")
                                         : concat(format_fixed(fit->second->slope, 3), " (R² ",
                                                  format_fixed(fit->second->r_squared, 4), ")"),
                   " |\n");
    }
    md += "\n";
  }
  return md;
}

SeriesKey series_of(const BenchmarkKey& key) {
  return {key.pass, key.dtype, key.mask, key.head_dim, key.batch, key.heads, key.threads, key.heads_kv, key.seq_q,
          key.lengths};
}

std::string describe(const SeriesKey& s) {
  return concat(s.pass, ", ", s.dtype, ", ", s.mask, ", d=", s.head_dim, ", B=", s.batch, ", H=", s.heads,
                ", T=", s.threads, s.heads_kv != 0 ? concat(", H_kv=", s.heads_kv) : std::string(),
                s.seq_q != 0 ? concat(", Nq=", s.seq_q) : std::string(),
                s.lengths.empty() ? std::string() : concat(", lengths ", s.lengths));
}

std::vector<FitRow> complexity_fits(const std::vector<BenchmarkRow>& rows) {
  std::vector<FitRow> fits;
  const SeriesTable table = series_table(rows);
  for (const auto& [series, variants] : table) {
    for (const auto& [variant, curve] : variants) {
      for (const char* quantity : {"time_ns", "peak_bytes"}) {
        std::vector<double> n;
        std::vector<double> y;
        for (const BenchmarkRow* row : curve) {
          const double value = quantity[0] == 't' ? row->median_ns : row->peak_bytes;
          if (!(std::isfinite(value) && value > 0.0)) continue;
          n.push_back(static_cast<double>(row->key.seq_len));
          y.push_back(value);
        }
        if (n.size() < 2 || n.front() == n.back()) continue;
        const LogLogFit fit = fit_log_log(n, y);
        fits.push_back({"fit", series, variant, "", quantity, fit.slope, fit.intercept, fit.r_squared, fit.points,
                        n.front(), n.back(), nan_value});
      }
    }
    // Crossovers of every pair of variants over the N both measured.
    for (auto a = variants.begin(); a != variants.end(); ++a) {
      for (auto b = std::next(a); b != variants.end(); ++b) {
        std::map<std::int64_t, double> time_b;
        for (const BenchmarkRow* row : b->second) time_b[row->key.seq_len] = row->median_ns;
        std::vector<double> n;
        std::vector<double> ta;
        std::vector<double> tb;
        for (const BenchmarkRow* row : a->second) {
          const auto match = time_b.find(row->key.seq_len);
          if (match == time_b.end()) continue;
          n.push_back(static_cast<double>(row->key.seq_len));
          ta.push_back(row->median_ns);
          tb.push_back(match->second);
        }
        if (n.size() < 2) continue;
        for (const Crossover& crossing : find_crossovers(n, ta, tb)) {
          const std::string& faster = crossing.a_faster_after ? a->first : b->first;
          const std::string& slower = crossing.a_faster_after ? b->first : a->first;
          fits.push_back({"crossover", series, faster, slower, "time_ns", nan_value, nan_value, nan_value, n.size(),
                          n.front(), n.back(), crossing.n});
        }
      }
    }
  }
  return fits;
}

std::string format_fits_csv(const std::vector<FitRow>& fits) {
  std::string out =
      "kind,pass,dtype,mask,head_dim,batch,heads,threads,variant,other_variant,quantity,slope,intercept,r_squared,"
      "points,n_min,n_max,crossover_n,heads_kv,seq_q,lengths\n";
  for (const FitRow& f : fits) {
    const SeriesKey& s = f.series;
    out += concat(f.kind, ",", csv_cell(s.pass), ",", csv_cell(s.dtype), ",", csv_cell(s.mask), ",", s.head_dim, ",",
                  s.batch, ",", s.heads, ",", s.threads, ",", csv_cell(f.variant), ",", csv_cell(f.other_variant), ",",
                  f.quantity, ",", format_number(f.slope), ",", format_number(f.intercept), ",",
                  format_number(f.r_squared), ",", f.points, ",", format_number(f.n_min), ",", format_number(f.n_max),
                  ",", format_number(f.crossover_n), ",", s.heads_kv == 0 ? s.heads : s.heads_kv, ",",
                  s.seq_q == 0 ? std::string("") : concat(s.seq_q), ",", csv_cell(s.lengths), "\n");
  }
  return out;
}

SummaryResult write_summary(const SummaryOptions& options) {
  // Read and check every input before touching out_dir: bad input leaves nothing behind.
  const std::vector<BenchmarkRow> rows = read_benchmark_csv(options.bench_csv);
  std::vector<VerifyRow> verify_rows;
  if (options.verify_csv) verify_rows = read_verify_csv(*options.verify_csv);
  // Where the time goes: BENCH.phases.csv beside BENCH.csv, when report convert wrote one.
  std::vector<PhaseRow> phase_rows;
  const fs::path phases_csv = phases_path_for(options.bench_csv);
  std::error_code phases_error;
  if (fs::exists(phases_csv, phases_error)) phase_rows = read_phases_csv(phases_csv);
  if (options.plot_format != "png" && options.plot_format != "svg") {
    throw_input_error("write_summary: plot format '", options.plot_format, "' is not png or svg");
  }
  const std::vector<FitRow> fits = complexity_fits(rows);
  const SeriesTable table = series_table(rows);

  std::error_code exists_error;
  if (fs::exists(options.out_dir, exists_error) && !fs::is_directory(options.out_dir, exists_error)) {
    throw_input_error("write_summary: output path ", options.out_dir, " exists and is not a directory");
  }
  fs::create_directories(options.out_dir);

  StagedFiles staged;
  std::map<SeriesKey, std::vector<Figure>> figures_of;
  std::vector<Figure> all_figures;
  for (const auto& [series, variants] : table) {
    figures_of[series] = series_figures(series, variants, options.plot_format);
    for (const Figure& figure : figures_of[series]) all_figures.push_back(figure);
  }
  SummaryResult result;
  result.plot_note = render_figures(all_figures, options, staged);
  const bool plots_made = result.plot_note.empty();

  std::string md = "# Benchmark summary\n\n";
  md += concat("Benchmarks: `", options.bench_csv.filename().string(), "` (", rows.size(), " rows); git_rev ",
               join_distinct(rows, &BenchmarkRow::git_rev), "; host ", join_distinct(rows, &BenchmarkRow::host), "; date ",
               join_distinct(rows, &BenchmarkRow::date), ".\n\n");
  if (!plots_made) md += concat("Plots skipped: ", result.plot_note, ".\n\n");
  md += allocator_section(rows);
  md += benchmark_section(rows, table, figures_of, plots_made);
  md += feature_sections(rows, fits);
  md += fits_section(fits);
  md += time_split_section(phase_rows);
  if (options.verify_csv) md += verify_section(verify_rows, *options.verify_csv);

  staged.add(options.out_dir / "fits.csv", format_fits_csv(fits));
  staged.add(options.out_dir / "summary.md", md);
  staged.commit();

  result.written = {options.out_dir / "summary.md", options.out_dir / "fits.csv"};
  if (plots_made) {
    for (const Figure& figure : all_figures) result.written.push_back(options.out_dir / figure.file_name);
  }
  return result;
}

}  // namespace ped::reports
