// report: benchmark and verification reports, and the regression gate.
//
//   report summarize --bench BENCH.csv [--verify VERIFY.csv] --out DIR
//   report compare BASE.csv NEW.csv [--threshold 0.05] [--alpha 0.05] [--allow-ungated]
//   report convert --json RUN.json [RUN2.json ...] --out BENCH.csv
//   report ab --rev-a REV --rev-b REV [--repetitions 9] [--filter REGEX] [--build-dir DIR]
//   report merge --out OUTDIR SHARD_DIR...
//
// Exit codes: 0 success / no regression; 1 a statistically significant regression (compare, ab), or
// a failed check in the merged verify.csv (merge, after writing every file);
// 2 bad input or any other error that prevents a verdict, including a gate that left benchmarks
// unjudged (without --allow-ungated). File formats: reports/README.md.
#include "reports/ab.hpp"
#include "core/atomic_file.hpp"
#include "reports/compare.hpp"
#include "core/errors.hpp"
#include "reports/gbench_json.hpp"
#include "reports/merge.hpp"
#include "reports/summary.hpp"

#include "core/cli_checks.hpp"

#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using namespace ped::reports;
using namespace ped;

constexpr int exit_ok = 0;
constexpr int exit_regression = 1;
constexpr int exit_failed_check = 1;  // merge: the merged verify.csv holds a failed check
constexpr int exit_error = 2;

int run_summarize(const SummaryOptions& options) {
  const SummaryResult result = write_summary(options);
  for (const fs::path& file : result.written) std::cout << "wrote " << file.string() << "\n";
  if (!result.plot_note.empty()) std::cout << "plots skipped: " << result.plot_note << "\n";
  return exit_ok;
}

// The gate's verdict as an exit code. A gate that left benchmarks unjudged says so on stderr first
// and fails, unless `allow_ungated`; a regression it did find still exits 1.
int gate_exit_code(const std::vector<Comparison>& comparisons, bool allow_ungated, const char* command) {
  const std::string incomplete = describe_incomplete_gate(gate_coverage(comparisons));
  if (has_regression(comparisons)) {
    if (!incomplete.empty()) std::cerr << "report " << command << ": also, " << incomplete << "\n";
    return exit_regression;
  }
  if (incomplete.empty()) return exit_ok;
  if (allow_ungated) {
    std::cerr << "report " << command << ": " << incomplete << " (accepted: --allow-ungated)\n";
    return exit_ok;
  }
  std::cerr << "report: " << command << ": " << incomplete
            << "; give both runs 9 or more repetitions and their .samples.csv, or pass --allow-ungated to accept\n";
  return exit_error;
}

int run_compare(const fs::path& base_csv, const fs::path& new_csv, const CompareOptions& options,
                const std::optional<fs::path>& csv_out, bool allow_ungated) {
  const BenchmarkSet base = read_benchmark_set(base_csv);
  const BenchmarkSet next = read_benchmark_set(new_csv);
  const std::vector<Comparison> comparisons = compare_benchmarks(base, next, options);
  std::cout << format_comparison_table(comparisons, options);
  const int code = gate_exit_code(comparisons, allow_ungated, "compare");
  if (csv_out && code != exit_error) write_file_atomically(*csv_out, format_comparison_csv(comparisons));
  return code;
}

std::string read_whole_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw_input_error(file.string(), ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int run_convert(const std::vector<fs::path>& json_files, const fs::path& out_csv, const std::string& git_rev) {
  // The same run given twice would count every repetition twice: refused by path and by content.
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < json_files.size(); ++i) {
    texts.push_back(read_whole_file(json_files[i]));
    for (std::size_t j = 0; j < i; ++j) {
      std::error_code ignored;
      if (json_files[i] == json_files[j] || fs::equivalent(json_files[i], json_files[j], ignored)) {
        throw_input_error("report convert: ", json_files[i].string(), " is given twice (--json ", j + 1, " and ", i + 1, ")");
      }
      if (texts[i] == texts[j]) {
        throw_input_error("report convert: ", json_files[i].string(), " holds the same bytes as ", json_files[j].string(),
                          " (the same run given twice)");
      }
    }
  }
  std::vector<MeasuredSample> samples;
  GbenchContext context;
  // Runs that reported an error (a configuration over the memory budget) are named once each; runs of
  // other benchmarks (layers, the GEMM ceiling) are only counted. Both are told after the files are
  // written, so that an error is always the first line.
  std::vector<std::string> errored;
  std::set<std::string> errored_seen;
  std::size_t other_runs = 0;
  for (std::size_t i = 0; i < json_files.size(); ++i) {
    if (texts[i].empty()) throw_input_error(json_files[i].string(), ":1: empty file");
    GbenchRun run = parse_gbench_json(texts[i], json_files[i].string());
    for (const std::string& skipped : run.skipped) {
      if (skipped.ends_with(": not an attention benchmark")) ++other_runs;
      else if (errored_seen.insert(skipped).second) errored.push_back(skipped);
    }
    if (context.host.empty()) context = run.context;
    samples.insert(samples.end(), run.samples.begin(), run.samples.end());
  }
  if (!git_rev.empty()) context.git_rev = git_rev;
  if (!first_control_character(git_rev).empty()) {
    throw_input_error("report convert: --git-rev '", printable(git_rev), "' holds a control character (expected printable text)");
  }
  if (samples.empty()) throw_input_error("report convert: no attention benchmarks in the JSON input");
  const TidyBenchmarks tidy = tidy_benchmarks(samples, context);
  StagedFiles staged;
  staged.add(out_csv, format_benchmark_csv(tidy.rows));
  staged.add(samples_path_for(out_csv), format_samples_csv(tidy.samples));
  staged.add(phases_path_for(out_csv), format_phases_csv(tidy.phases));
  staged.commit();
  std::cout << "wrote " << out_csv.string() << " (" << tidy.rows.size() << " benchmarks), "
            << samples_path_for(out_csv).string() << " (" << tidy.samples.size() << " samples) and "
            << phases_path_for(out_csv).string() << " (" << tidy.phases.size() << " phase fractions)\n";
  for (const std::string& skipped : errored) std::cerr << "report convert: skipped " << skipped << "\n";
  if (other_runs) std::cerr << "report convert: left out " << other_runs << " runs of non-attention benchmarks\n";
  return exit_ok;
}

int run_merge(const std::vector<fs::path>& shard_dirs, const fs::path& out_dir) {
  const MergePlan plan = plan_merge(shard_dirs, out_dir);
  write_merge(plan);
  for (const std::string& line : plan.summary) std::cout << line << "\n";
  for (const std::string& note : plan.notes) std::cerr << "report merge: " << note << "\n";
  // A failed check is a verdict of the sweep, as verify's own exit 1: told once everything is written.
  if (plan.verify_failed > 0) {
    std::cerr << "report merge: " << plan.verify_failed << " of " << plan.verify_rows
              << " verify checks failed (verify.csv, column passed)\n";
    return exit_failed_check;
  }
  return exit_ok;
}

int run_ab_command(const AbOptions& options, bool allow_ungated) {
  const AbResult result = run_ab(options, std::cerr);
  std::cout << "A = " << result.commit_a << " (" << options.rev_a << "), B = " << result.commit_b << " ("
            << options.rev_b << "); change is B relative to A\n";
  std::cout << format_comparison_table(result.comparisons, options.compare);
  return gate_exit_code(result.comparisons, allow_ungated, "ab");
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = ped::cli;
  CLI::App app{"report: benchmark/verification reports and the benchmark regression gate"};
  app.require_subcommand(1);
  // An option given twice is an error, not "the last one wins".
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::Throw);

  SummaryOptions summary;
  std::string verify_csv;
  CLI::App* summarize = app.add_subcommand("summarize", "summary.md, fits.csv and plots from a benchmark CSV");
  summarize->add_option("--bench", summary.bench_csv, "tidy benchmark CSV")->required()->check(cli::non_empty());
  summarize->add_option("--verify", verify_csv, "verify CSV to summarise as well")->check(cli::non_empty());
  summarize->add_option("--out", summary.out_dir, "output directory (created if missing)")->required()->check(cli::non_empty());
  summarize->add_option("--gnuplot", summary.gnuplot, "gnuplot program")->capture_default_str();
  summarize->add_option("--plot-format", summary.plot_format, "png or svg")
      ->check(CLI::IsMember({"png", "svg"}))
      ->capture_default_str();

  fs::path base_csv;
  fs::path new_csv;
  std::string compare_csv;
  CompareOptions compare_options;
  CLI::App* compare = app.add_subcommand("compare", "compare NEW against BASE; exit 1 on a significant regression");
  compare->add_option("base", base_csv, "baseline benchmark CSV (samples from BASE.samples.csv)")->required();
  compare->add_option("new", new_csv, "new benchmark CSV (samples from NEW.samples.csv)")->required();
  compare->add_option("--threshold", compare_options.threshold, "relative change of the median that matters")
      ->check(cli::real_in(0.0, false))
      ->capture_default_str();
  compare->add_option("--alpha", compare_options.alpha, "significance level of the U test")
      ->check(cli::real_in(0.0, true, 1.0, true))  // alpha 0 never rejects, 1 always does
      ->capture_default_str();
  compare->add_option("--min-repetitions", compare_options.min_repetitions, "samples per side needed to gate")
      ->check(cli::integer_in(2, 1000000))
      ->capture_default_str();
  compare->add_option("--csv", compare_csv, "also write the comparison as CSV to this file")->check(cli::non_empty());
  bool allow_ungated = false;
  compare->add_flag("--allow-ungated", allow_ungated,
                    "exit 0 even when benchmarks were not gated (no samples, too few repetitions, unmatched)");

  std::vector<fs::path> json_files;
  fs::path convert_out;
  std::string convert_rev;
  CLI::App* convert = app.add_subcommand("convert", "Google Benchmark JSON -> BENCH.csv + BENCH.samples.csv");
  convert->add_option("--json", json_files, "Google Benchmark JSON output(s)")
      ->required()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->check(cli::non_empty());
  convert->add_option("--out", convert_out, "benchmark CSV to write")->required()->check(cli::non_empty());
  convert->add_option("--git-rev", convert_rev, "git revision (default: the JSON context's git_rev)")->check(cli::non_empty());

  AbOptions ab_options;
  std::string ab_build_dir;
  std::string ab_out_dir;
  CLI::App* ab = app.add_subcommand("ab", "build two git revisions, run their benchmarks interleaved, compare B to A");
  ab->add_option("--rev-a", ab_options.rev_a, "baseline revision (A)")->required()->check(cli::non_empty());
  ab->add_option("--rev-b", ab_options.rev_b, "revision to judge (B)")->required()->check(cli::non_empty());
  ab->add_option("--repetitions", ab_options.repetitions, "runs of each side, interleaved A B A B ...")
      ->check(cli::integer_in(1, 100000))
      ->capture_default_str();
  ab->add_option("--filter", ab_options.filter, "--benchmark_filter regex");
  ab->add_option("--build-dir", ab_build_dir, "keep source and build trees here (default: a temp dir, removed)")->check(cli::non_empty());
  ab->add_option("--repo", ab_options.repository, "git repository to take the revisions from")->capture_default_str();
  ab->add_option("--target", ab_options.bench_target, "CMake target to build")->capture_default_str();
  ab->add_option("--executable", ab_options.bench_executable, "file name of the built benchmark")->capture_default_str();
  ab->add_option("--cmake-arg", ab_options.cmake_args, "configure arguments (replace the defaults)")
      ->capture_default_str();
  ab->add_option("--jobs", ab_options.jobs, "parallel build jobs")->check(cli::integer_in(1, 256))->capture_default_str();
  ab->add_option("--out", ab_out_dir, "also write A.csv, B.csv, their samples and comparison.csv here")->check(cli::non_empty());
  ab->add_option("--threshold", ab_options.compare.threshold, "relative change of the median that matters")
      ->check(cli::real_in(0.0, false))
      ->capture_default_str();
  ab->add_option("--alpha", ab_options.compare.alpha, "significance level of the U test")
      ->check(cli::real_in(0.0, true, 1.0, true))  // alpha 0 never rejects, 1 always does
      ->capture_default_str();
  ab->add_flag("--allow-ungated", allow_ungated, "exit 0 even when benchmarks were not gated (too few repetitions)");

  std::vector<fs::path> merge_dirs;
  fs::path merge_out;
  CLI::App* merge = app.add_subcommand(
      "merge",
      "combine the outputs of the shards of one sweep (bench --shard I/N: bench.json; verify --shard I/N: verify.csv + "
      "verify.shard.json) into OUTDIR: bench.json, bench.csv, bench.samples.csv, bench.phases.csv, verify.csv, "
      "verify.shard.json; refuses shards of different revisions, profiles, settings or case lists, a missing, "
      "duplicated or overlapping shard, outputs that do not match their manifest, cases no shard ran, and bench "
      "timings from different host kinds (exit 2, nothing written)");
  merge->add_option("SHARD_DIR", merge_dirs, "shard output directories (each holding bench.json and/or verify.csv)")
      ->required()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->check(cli::non_empty());
  merge->add_option("--out", merge_out, "output directory (created if missing; not one of the shard directories)")
      ->required()
      ->check(cli::non_empty());

  // CLI11 answers a misspelt subcommand with "A subcommand is required", which does not name it.
  const std::set<std::string> subcommands{"summarize", "compare", "convert", "ab", "merge"};
  if (argc > 1 && argv[1][0] != '-' && !subcommands.contains(argv[1])) {
    std::cerr << "report: unknown subcommand '" << printable(argv[1]) << "' (expected summarize, compare, convert, ab or merge)\n";
    return exit_error;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? exit_ok : exit_error;
  }

  try {
    if (summarize->parsed()) {
      if (!verify_csv.empty()) summary.verify_csv = verify_csv;
      return run_summarize(summary);
    }
    if (compare->parsed()) {
      return run_compare(base_csv, new_csv, compare_options,
                         compare_csv.empty() ? std::nullopt : std::optional<fs::path>(compare_csv), allow_ungated);
    }
    if (convert->parsed()) return run_convert(json_files, convert_out, convert_rev);
    if (merge->parsed()) return run_merge(merge_dirs, merge_out);
    if (ab->parsed()) {
      if (!ab_build_dir.empty()) ab_options.build_dir = ab_build_dir;
      if (!ab_out_dir.empty()) ab_options.out_dir = ab_out_dir;
      return run_ab_command(ab_options, allow_ungated);
    }
  } catch (const InputError& error) {
    std::cerr << "report: bad input: " << error.what() << "\n";
    return exit_error;
  } catch (const std::exception& error) {
    std::cerr << "report: error: " << error.what() << "\n";
    return exit_error;
  }
  return exit_error;
}
