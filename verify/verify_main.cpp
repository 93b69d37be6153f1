// The `verify` command: sweeps ops x shapes x seeds x dtypes x references, prints a summary, writes
// the CSV (and with --junit the JUnit XML) atomically. Exit 0 when every check passed, 1 when any
// failed or the run failed (out of memory, a report not written), 2 on a usage error (reported before
// any work, nothing written).
//
// Sharded runs (core/shard.hpp): a case is one planned problem, named by its op, variant, shape,
// mask and seed (sweep.hpp: case_key), its cost the estimate of verify/footprint.hpp's check_cost.
// --shard I/N runs the cases shard_cases gives shard I of N (the whole selection is planned and
// checked against the memory budget first, so every shard refuses the same selections) and writes
// the shard manifest (shard_manifest_path: "verify.csv" -> "verify.shard.json") with the CSV, the
// two (and the JUnit XML) as one set: none appears unless all are complete. --list-cases prints
// the case list with each case's shard and cost and runs nothing.
#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <new>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/numbers.hpp"
#include "core/shard.hpp"
#include "verify/junit.hpp"
#include "verify/plugins.hpp"
#include "verify/report.hpp"
#include "verify/sweep.hpp"

namespace {

using namespace ped::verify;

[[noreturn]] void usage_error(const std::string& option, const std::string& value, const std::string& what) {
  throw std::invalid_argument(option + " '" + value + "': " + what);
}

// The items of a comma-separated option value: at least one, none empty, none given twice.
std::vector<std::string> list_items(const std::string& option, const std::string& text, const std::string& expected) {
  if (text.empty()) usage_error(option, text, "empty, expected " + expected);
  std::vector<std::string> items;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t comma = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, comma - begin);
    begin = comma + 1;
    if (item.empty()) usage_error(option, text, "empty item, expected " + expected);
    if (std::find(items.begin(), items.end(), item) != items.end()) usage_error(option, text, item + " is given twice");
    items.push_back(item);
  }
  return items;
}

// A decimal integer in [lo, hi], digits only (no sign, no space, no exponent).
std::uint64_t parse_integer(const std::string& option, const std::string& text, std::uint64_t lo, std::uint64_t hi) {
  const std::optional<std::uint64_t> value = ped::parse_integer_in<std::uint64_t>(text, lo, hi);
  if (!value) usage_error(option, text, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return *value;
}

// A finite number in (lo, hi].
double parse_number(const std::string& option, const std::string& text, double lo, double hi,
                    const std::string& range) {
  const std::optional<double> value = ped::parse_real_in(text, lo, true, hi, false);
  if (!value) usage_error(option, text, "expected a number in " + range);
  return *value;
}

// Every name `member` lists over the ops (today the variants, for --variants), for messages and validation.
std::vector<std::string> known_names(std::vector<std::string> OpCase::*member) {
  std::vector<std::string> names;
  for (const OpCase& c : op_cases()) {
    for (const std::string& v : c.*member) {
      if (!v.empty() && std::find(names.begin(), names.end(), v) == names.end()) names.push_back(v);
    }
  }
  return names;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

// An output path (--out, --junit) whose directory exists and that is not itself a directory:
// checked before any work.
void check_out_path(const std::string& option, const std::string& out) {
  namespace fs = std::filesystem;
  if (out.empty()) usage_error(option, out, "empty, expected a file path");
  std::error_code ec;
  if (fs::is_directory(out, ec)) usage_error(option, out, "is a directory, expected a file path");
  const fs::path parent = fs::path(out).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    usage_error(option, out, "directory '" + parent.string() + "' does not exist");
  }
}

int run(int argc, char** argv) {
  CLI::App app{"pedestrian verify: every layer's forward and hand-derived backward against LibTorch autograd and "
               "finite differences"};
  std::string ops, variants, masks, dtypes = "float,double", references, seeds = "1,2";
  std::vector<std::string> shapes;
  std::string out = "verify.csv";
  std::string full_jacobian_max = std::to_string(FiniteDifferenceOptions{}.full_jacobian_max_entries);
  std::string directions = std::to_string(FiniteDifferenceOptions{}.directions);
  std::string memory_budget = "8", tolerance_scale = "1";
  bool list = false, quiet = false;
  CLI::Option* ops_option = app.add_option("--ops", ops, "Comma-separated ops to check (default: all; see --list)");
  app.add_option("--shape", shapes,
                 "Sizes replacing each op's default shapes, e.g. N=5,D=8,H=2 (repeatable; sizes: N D H F V T R I O K "
                 "B Nk Dh Hkv, each in [1, 1000000])");
  CLI::Option* variants_option =
      app.add_option("--variants", variants, "Attention kernels: comma-separated variants (default: all)");
  CLI::Option* masks_option =
      app.add_option("--masks", masks,
                     "Attention kernels: comma-separated masks, each a family (the sweep's sample of that kind, sized "
                     "to each shape; see --list) or a concrete mask in Mask::parse's text, e.g. "
                     "sliding_window(left=256,right=0) (default: every family)");
  std::string features = "all";
  app.add_option("--features", features,
                 "Attention features whose sets op sdpa_features runs: all, none, or a comma-separated list among "
                 "grouped_query,alibi,softcap,variable_length,dropout,sinks (a set runs when every feature it uses is "
                 "listed, and for the implementations that declare them)")
      ->capture_default_str();
  app.add_option("--seeds", seeds, "Comma-separated seeds, integers in [0, 2^64 - 1]")->capture_default_str();
  app.add_option("--dtypes", dtypes,
                 "Comma-separated among float,double,bfloat16,float16 (the 16-bit ones: attention plugins that declare "
                 "them, checked against LibTorch's error in the same dtype)")
      ->capture_default_str();
  CLI::Option* references_option =
      app.add_option("--references", references,
                     "Comma-separated among libtorch,finite_difference,naive (default: each op's own; naive applies "
                     "to attention kernels only)");
  app.add_option("--out", out, "CSV report path (written atomically; its directory must exist)")->capture_default_str();
  std::string junit;
  CLI::Option* junit_option = app.add_option(
      "--junit", junit,
      "Also write the report as JUnit XML for CI test reporters: a test suite per op, a test case per CSV row "
      "(written atomically; its directory must exist)");
  app.add_option("--full-jacobian-max", full_jacobian_max,
                 "Largest (outputs x inputs) compared as a full Jacobian, in [0, 1000000000]; larger ones use random "
                 "directions")
      ->capture_default_str();
  app.add_option("--directions", directions, "Random directions per input in the fast finite-difference mode, in [1, 1000]")
      ->capture_default_str();
  app.add_option("--memory-budget-gib", memory_budget,
                 "Largest estimated memory of the sweep, in GiB; a selection above it is refused before any work")
      ->capture_default_str();
  app.add_option("--tolerance-scale", tolerance_scale,
                 "Multiply every tolerance by this, in (0, 1]: how much margin the checks have (tightens only)")
      ->capture_default_str();
  std::vector<std::string> plugins;
  std::string plugin_layouts;
  app.add_option("--plugin", plugins,
                 "An attention plugin (shared library, include/pedestrian/attention_plugin.h) checked as a variant of "
                 "op sdpa (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--plugin-layouts", plugin_layouts,
                 "Layouts the plugins get: contiguous (default) and/or strided (transposed, padded views; variant "
                 "NAME[strided])");
  // Default: plugin::kDefaultPluginTimeLimit (300 s, far above one check of the default sweep).
  std::string plugin_timeout = std::to_string(ped::plugin::kDefaultPluginTimeLimit.count() / 1000);
  app.add_option("--plugin-timeout", plugin_timeout,
                 "Seconds each plugin check may run in its child process, in (0, 86400]; past it the child is killed "
                 "and the check is a failed row naming the case, and the other checks go on")
      ->capture_default_str();
  app.add_flag("--list", list, "List the ops and their default shapes, then exit")
      ->multi_option_policy(CLI::MultiOptionPolicy::Throw);
  app.add_flag("--quiet", quiet, "No progress lines")->multi_option_policy(CLI::MultiOptionPolicy::Throw);
  std::string shard_text;
  CLI::Option* shard_option = app.add_option(
      "--shard", shard_text,
      "Run shard I of N (I/N, 0 <= I < N): the part of the selection's cases (one case: one op, variant, shape, "
      "mask and seed) that a split balanced by estimated cost gives it, in sweep order; the N shards together "
      "run every case once. Also writes the shard manifest beside the CSV (x.csv -> x.shard.json), which "
      "report merge reads. A shard without cases (fewer cases than N) writes the CSV header and its manifest "
      "and exits 0");
  bool list_cases = false;
  app.add_flag("--list-cases", list_cases,
               "Print the selection's cases, one line each (shard, estimated cost, case), and each shard's count "
               "and total cost (N from --shard, default 1), then exit without checking or writing anything")
      ->multi_option_policy(CLI::MultiOptionPolicy::Throw);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  SweepConfig config;
  std::vector<PlannedProblem> planned;
  ped::ShardSpec shard;
  SweepCases cases;
  try {
    if (*shard_option) shard = ped::parse_shard("--shard", shard_text);
    load_plugins(plugins, plugin_layouts, std::cerr);  // before the op list is built: it names their variants
    std::vector<std::string> op_names;
    for (const OpCase& c : op_cases()) op_names.push_back(c.name);
    if (*ops_option) {
      config.ops = list_items("--ops", ops, "a comma-separated list of ops (see --list)");
      for (const std::string& name : config.ops) {
        if (std::find(op_names.begin(), op_names.end(), name) == op_names.end()) {
          usage_error("--ops", ops, "unknown op " + name + ", expected one of: " + joined(op_names));
        }
      }
    }
    for (const std::string& s : shapes) {
      Dims dims;
      try {
        dims = parse_dims(s);
      } catch (const std::invalid_argument& e) {
        usage_error("--shape", s, e.what());
      }
      for (std::size_t i = 0; i < config.shapes.size(); ++i) {
        if (config.shapes[i] == dims) usage_error("--shape", s, "the sizes of --shape '" + shapes[i] + "', given twice");
      }
      config.shapes.push_back(dims);
    }
    config.seeds.clear();
    for (const std::string& s : list_items("--seeds", seeds, "a comma-separated list of seeds")) {
      config.seeds.push_back(parse_integer("--seeds", s, 0, std::numeric_limits<std::uint64_t>::max()));
    }
    config.dtypes.clear();
    for (const std::string& s : list_items("--dtypes", dtypes, "a comma-separated list among float,double,bfloat16,float16")) {
      if (s == "float") config.dtypes.push_back(Dtype::f32);
      else if (s == "double") config.dtypes.push_back(Dtype::f64);
      else if (s == "bfloat16") config.dtypes.push_back(Dtype::bf16);  // attention plugins that declare it
      else if (s == "float16") config.dtypes.push_back(Dtype::f16);
      else usage_error("--dtypes", dtypes, s + " is not float, double, bfloat16 or float16");
    }
    if (*references_option) {
      for (const std::string& s :
           list_items("--references", references, "a comma-separated list among libtorch,finite_difference,naive")) {
        if (s == "libtorch") config.references.push_back(Reference::libtorch);
        else if (s == "finite_difference") config.references.push_back(Reference::finite_difference);
        else if (s == "naive") config.references.push_back(Reference::naive);
        else usage_error("--references", references, s + " is not libtorch, finite_difference or naive");
      }
    }
    auto choices = [](const char* option, const std::string& text, std::vector<std::string> OpCase::*member) {
      const std::vector<std::string> known = known_names(member);
      std::vector<std::string> items = list_items(option, text, "a comma-separated list among " + joined(known));
      for (const std::string& item : items) {
        if (std::find(known.begin(), known.end(), item) == known.end()) {
          usage_error(option, text, "unknown name " + item + ", expected one of: " + joined(known));
        }
      }
      return items;
    };
    if (*variants_option) config.variants = choices("--variants", variants, &OpCase::variants);
    if (*masks_option) config.masks = parse_mask_list(masks);  // families or Mask::parse texts
    config.features = parse_feature_list(features);
    config.fd.full_jacobian_max_entries = parse_integer("--full-jacobian-max", full_jacobian_max, 0, 1'000'000'000);
    config.fd.directions = static_cast<int>(parse_integer("--directions", directions, 1, 1000));
    config.memory_budget_gib = parse_number("--memory-budget-gib", memory_budget, 0, kMaxMemoryBudgetGib,
                                            "(0, " + std::to_string(static_cast<long long>(kMaxMemoryBudgetGib)) + "]");
    config.tolerance_scale = parse_number("--tolerance-scale", tolerance_scale, 0, 1, "(0, 1]");
    // Whole milliseconds, rounded up: a limit above zero never becomes zero, which would mean none.
    config.isolated_time_limit = std::chrono::milliseconds(
        static_cast<long long>(std::ceil(parse_number("--plugin-timeout", plugin_timeout, 0, 86400, "(0, 86400]") * 1000)));
    check_out_path("--out", out);
    namespace fs = std::filesystem;
    const auto same_file = [](const std::string& a, const std::string& b) {
      std::error_code ec;
      return fs::absolute(a, ec).lexically_normal() == fs::absolute(b, ec).lexically_normal();
    };
    if (*junit_option) {
      check_out_path("--junit", junit);
      if (same_file(junit, out)) usage_error("--junit", junit, "is the --out path too, expected another file");
    }
    if (*shard_option) {
      const std::string manifest = ped::shard_manifest_path(out).string();
      if (fs::is_directory(manifest)) {
        usage_error("--out", out, "its shard manifest path '" + manifest + "' is a directory, expected a file path");
      }
      if (*junit_option && same_file(junit, manifest)) {
        usage_error("--junit", junit, "is the shard manifest path of --out too, expected another file");
      }
    }
    // Every problem is estimated and built here, before any check runs: sizes an op cannot take, a
    // selection above the memory budget or one without a check are usage errors too.
    if (!list) planned = plan_sweep(config);
    // The whole selection's cases: what a shard takes its part of and --list-cases prints.
    if (!list && (*shard_option || list_cases)) {
      try {
        cases = sweep_cases(planned, config);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument((*shard_option ? "--shard '" + shard_text + "'" : std::string("--list-cases")) +
                                    ": " + e.what());
      }
    }
  } catch (const std::invalid_argument& e) {
    std::cerr << "verify: " << e.what() << "\n";
    return 2;
  }

  if (list) {
    for (const OpCase& c : op_cases()) {
      std::cout << c.name << ":";
      for (const Dims& d : c.default_shapes) {
        std::cout << "  [" << c.make({d, c.variants.front(), c.masks.front(), c.feature_sets.front()}, 1).shape << "]";
      }
      if (c.feature_sets.size() > 1 || !c.feature_sets.front().empty()) {
        std::cout << "\n  feature sets:";
        for (const std::string& f : c.feature_sets) std::cout << " " << f;
      }
      if (c.variants.size() > 1) {
        std::cout << "\n  variants:";
        for (const std::string& v : c.variants) std::cout << " " << v;
      }
      if (c.masks.size() > 1 || c.check_concrete_mask) {
        std::cout << "\n  masks:";
        for (const std::string& m : c.masks) std::cout << " " << m;
        if (c.check_concrete_mask) std::cout << ", or any concrete mask";
      }
      std::cout << "\n";
    }
    std::cout << "--masks takes the family names above (the sweep's sample of that kind, sized to each shape) and any "
                 "concrete mask in Mask::parse's text:\n  "
              << ped::Mask::syntax() << "\n";
    return 0;
  }

  if (list_cases) {
    std::cout << ped::list_cases_table(cases.keys, cases.costs, shard.count);
    return 0;
  }
  // This shard's cases (all of them without --shard).
  std::optional<ped::ShardManifest> manifest;
  if (*shard_option) {
    manifest = verify_shard_manifest(cases, shard, config, plugins, plugin_layouts);
    std::vector<PlannedProblem> mine;
    mine.reserve(manifest->case_indices.size());
    for (std::size_t i : manifest->case_indices) mine.push_back(std::move(planned[i]));
    planned = std::move(mine);
    std::uint64_t cost = 0, total = 0;
    for (std::size_t i : manifest->case_indices) cost += cases.costs[i];
    for (std::uint64_t c : cases.costs) total += c;
    if (!quiet) {
      std::cerr << "shard " << ped::to_string(shard) << ": " << planned.size() << " of " << cases.keys.size()
                << " cases, estimated cost " << cost << " of " << total << "\n";
    }
  }

  at::set_num_threads(1);  // small shapes: threading only adds noise
  const auto start = std::chrono::steady_clock::now();
  auto previous = start;
  std::map<std::string, double> seconds_per_op;  // the JUnit suites' times
  const std::vector<CheckRow> rows =
      run_planned(planned, config, [&](const Problem& p, std::size_t done, std::size_t total) {
        const auto now = std::chrono::steady_clock::now();
        const double problem_seconds = std::chrono::duration<double>(now - previous).count();
        seconds_per_op[p.op] += problem_seconds;
        previous = now;
        if (!quiet) {
          std::cerr << "[" << done << "/" << total << "] " << p.op << " " << p.shape << " seed=" << p.seed << " ("
                    << problem_seconds << " s)\n";
        }
      });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  print_summary(std::cout, rows);
  try {
    // One set: the CSV, the JUnit XML and the shard manifest appear together or not at all.
    ped::StagedFiles files;
    files.add(out, csv_text(rows));
    if (*junit_option) files.add(junit, junit_xml(rows, seconds_per_op));
    if (manifest) files.add(ped::shard_manifest_path(out), ped::manifest_json(*manifest));
    files.commit();
  } catch (const std::exception& e) {
    std::cerr << "verify: " << e.what() << "\n";
    return 1;
  }
  std::cout << "report: " << out << " (" << rows.size() << " rows, " << seconds << " s)\n";
  if (*junit_option) std::cout << "junit: " << junit << "\n";
  if (manifest) std::cout << "shard manifest: " << ped::shard_manifest_path(out).string() << "\n";
  for (const CheckRow& r : rows) {
    if (!r.passed) return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Whatever escapes the run ends here with a message and exit 1, never as an uncaught exception.
  try {
    return run(argc, argv);
  } catch (const std::bad_alloc& e) {
    std::cerr << "verify: out of memory (" << e.what() << "): the machine has less memory than --memory-budget-gib "
              << "allowed; lower --memory-budget-gib or choose smaller --shape sizes\n";
  } catch (const std::exception& e) {
    std::cerr << "verify: error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "verify: error: an exception that is not a std::exception\n";
  }
  return 1;
}
