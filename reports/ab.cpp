#include "reports/ab.hpp"

#include "core/atomic_file.hpp"
#include "core/errors.hpp"
#include "core/process.hpp"

#include <fstream>

namespace ped::reports {
namespace fs = std::filesystem;

namespace {

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string tail_of(const fs::path& file, std::size_t lines) {
  std::ifstream in(file);
  std::vector<std::string> kept;
  for (std::string line; std::getline(in, line);) {
    kept.push_back(line);
    if (kept.size() > lines) kept.erase(kept.begin());
  }
  std::string out;
  for (const std::string& line : kept) out += "  " + line + "\n";
  return out;
}

// Runs a step whose output goes to `log_file`; on failure throws with the command and the log's tail.
void run_logged(const std::vector<std::string>& argv, const fs::path& log_file, const char* what) {
  const ProcessResult result = run_process(argv, {std::nullopt, log_file, std::nullopt, true});
  if (!result.started) throw std::runtime_error(concat("run_ab: ", what, ": ", result.error));
  if (result.exit_code != 0) {
    throw std::runtime_error(concat("run_ab: ", what, " failed (exit ", result.exit_code, "): ", describe_command(argv),
                                    "\nlast lines of ", log_file.string(), ":\n", tail_of(log_file, 15)));
  }
}

std::string resolve_commit(const fs::path& top, const std::string& rev) {
  if (rev.empty()) throw_input_error("run_ab: empty revision");
  try {
    return trimmed(capture_output({"git", "-C", top.string(), "rev-parse", "--verify", "--quiet", rev + "^{commit}"}));
  } catch (const std::runtime_error& error) {
    throw_input_error("run_ab: revision '", rev, "' is not a commit in ", top.string(), " (", error.what(), ")");
  }
}

// A `git worktree add` that is removed again (with `git worktree remove --force`) unless kept.
class Worktree {
 public:
  Worktree(const fs::path& top, const fs::path& path, const std::string& commit, bool keep, std::ostream& log)
      : top_(top), path_(path), keep_(keep) {
    if (fs::exists(path / ".git")) {
      log << "reusing source tree " << path.string() << "\n";
      return;
    }
    log << "git worktree add " << path.string() << " " << commit << "\n";
    const fs::path log_file = path.string() + ".worktree.log";
    run_logged({"git", "-C", top.string(), "worktree", "add", "--detach", path.string(), commit}, log_file,
               "git worktree add");
    created_ = true;
  }
  Worktree(const Worktree&) = delete;
  Worktree& operator=(const Worktree&) = delete;
  ~Worktree() {
    if (keep_ || !created_) return;
    run_process({"git", "-C", top_.string(), "worktree", "remove", "--force", path_.string()},
                {std::nullopt, fs::path("/dev/null"), std::nullopt, true});
  }

 private:
  fs::path top_;
  fs::path path_;
  bool keep_;
  bool created_ = false;
};

fs::path find_executable(const fs::path& build, const std::string& name) {
  for (const auto& entry : fs::recursive_directory_iterator(build)) {
    if (entry.path().filename() != name || !entry.is_regular_file()) continue;
    if ((entry.status().permissions() & fs::perms::owner_exec) != fs::perms::none) return entry.path();
  }
  throw std::runtime_error(concat("run_ab: no executable '", name, "' in ", build.string(), " after the build"));
}

struct Side {
  std::string label;  // "A" or "B"
  std::string commit;
  fs::path source;
  fs::path build;
  fs::path executable;
  std::vector<MeasuredSample> samples;
  GbenchContext context;
};

void build_side(Side& side, const AbOptions& options, std::ostream& log) {
  log << side.label << ": configuring " << side.build.string() << "\n";
  std::vector<std::string> configure = {"cmake", "-S", side.source.string(), "-B", side.build.string()};
  configure.insert(configure.end(), options.cmake_args.begin(), options.cmake_args.end());
  run_logged(configure, side.build.string() + ".configure.log", "cmake configure");
  log << side.label << ": building " << options.bench_target << "\n";
  run_logged({"cmake", "--build", side.build.string(), "--target", options.bench_target, "-j", std::to_string(options.jobs)},
             side.build.string() + ".build.log", "cmake --build");
  side.executable = find_executable(side.build, options.bench_executable);
}

void run_once(Side& side, const AbOptions& options, const fs::path& runs_dir, int repetition) {
  const fs::path json = runs_dir / concat(side.label, "-", repetition, ".json");
  std::vector<std::string> argv = {side.executable.string(), "--benchmark_repetitions=1", "--benchmark_format=json",
                                   "--benchmark_out=" + json.string(), "--benchmark_out_format=json"};
  if (!options.filter.empty()) argv.push_back("--benchmark_filter=" + options.filter);
  run_logged(argv, runs_dir / concat(side.label, "-", repetition, ".log"), "benchmark run");
  GbenchRun run = read_gbench_json(json);
  if (run.samples.empty()) {
    throw InputError(concat("run_ab: ", json.string(), " (", side.label, ", commit ", side.commit,
                            ") holds no attention benchmark", options.filter.empty() ? "" : " matching the filter"));
  }
  if (side.context.host.empty()) side.context = run.context;
  side.samples.insert(side.samples.end(), run.samples.begin(), run.samples.end());
}

}  // namespace

AbResult run_ab(const AbOptions& options, std::ostream& log) {
  if (options.repetitions < 1) throw_input_error("run_ab: repetitions ", options.repetitions, " must be >= 1");
  if (options.jobs < 1) throw_input_error("run_ab: jobs ", options.jobs, " must be >= 1");
  std::string top_text;
  try {
    top_text = trimmed(capture_output({"git", "-C", options.repository.string(), "rev-parse", "--show-toplevel"}));
  } catch (const std::runtime_error& error) {
    throw_input_error("run_ab: ", options.repository.string(), " is not inside a git repository (", error.what(), ")");
  }
  const fs::path top = top_text;
  Side a{"A", resolve_commit(top, options.rev_a), {}, {}, {}, {}, {}};
  Side b{"B", resolve_commit(top, options.rev_b), {}, {}, {}, {}, {}};

  std::optional<TempDirectory> temp;
  fs::path work;
  if (options.build_dir) {
    fs::create_directories(*options.build_dir);
    work = fs::absolute(*options.build_dir);
  } else {
    temp.emplace("ped-report-ab-");
    work = temp->path();
  }
  const bool keep = options.build_dir.has_value();
  for (Side* side : {&a, &b}) {
    const std::string tag = concat(side->label == "A" ? "a-" : "b-", side->commit.substr(0, 12));
    side->source = work / concat("src-", tag);
    side->build = work / concat("build-", tag);
  }
  // Declared after `temp`, so the worktrees are removed before their directory is.
  const Worktree tree_a(top, a.source, a.commit, keep, log);
  const Worktree tree_b(top, b.source, b.commit, keep, log);
  build_side(a, options, log);
  build_side(b, options, log);

  const fs::path runs_dir = work / "runs";
  fs::create_directories(runs_dir);
  for (int r = 0; r < options.repetitions; ++r) {
    log << "run " << (r + 1) << "/" << options.repetitions << ": A, B\n";
    run_once(a, options, runs_dir, r);
    run_once(b, options, runs_dir, r);
  }

  AbResult result;
  result.commit_a = a.commit;
  result.commit_b = b.commit;
  a.context.git_rev = a.commit;
  b.context.git_rev = b.commit;
  result.a = tidy_benchmarks(a.samples, a.context);
  result.b = tidy_benchmarks(b.samples, b.context);
  result.comparisons = compare_samples(result.a.samples, result.b.samples, options.compare);
  if (options.out_dir) {
    fs::create_directories(*options.out_dir);
    StagedFiles staged;
    staged.add(*options.out_dir / "A.csv", format_benchmark_csv(result.a.rows));
    staged.add(*options.out_dir / "A.samples.csv", format_samples_csv(result.a.samples));
    staged.add(*options.out_dir / "B.csv", format_benchmark_csv(result.b.rows));
    staged.add(*options.out_dir / "B.samples.csv", format_samples_csv(result.b.samples));
    staged.add(*options.out_dir / "comparison.csv", format_comparison_csv(result.comparisons));
    staged.commit();
  }
  return result;
}

}  // namespace ped::reports
