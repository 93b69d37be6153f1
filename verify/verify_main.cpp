// The `verify` command: sweeps ops x shapes x seeds x dtypes x references, prints a summary, writes
// the CSV atomically. Exit 0 when every check passed, 1 when any failed, 2 on a usage error.
#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <sstream>

#include "verify/plugins.hpp"
#include "verify/report.hpp"
#include "verify/sweep.hpp"

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ped::verify;
  CLI::App app{"pedestrian verify: every layer's forward and hand-derived backward against LibTorch autograd and "
               "finite differences"};
  std::string ops, variants, masks, dtypes = "float,double", references, seeds = "1,2";
  std::vector<std::string> shapes;
  std::string out = "verify.csv";
  bool list = false, quiet = false;
  std::size_t full_jacobian_max = FiniteDifferenceOptions{}.full_jacobian_max_entries;
  int directions = FiniteDifferenceOptions{}.directions;
  app.add_option("--ops", ops, "Comma-separated ops to check (default: all; see --list)");
  app.add_option("--shape", shapes,
                 "Sizes replacing each op's default shapes, e.g. N=5,D=8,H=2 (repeatable; sizes: N D H F V T R I O K)");
  app.add_option("--variants", variants, "Attention kernels: comma-separated variants (default: all)");
  app.add_option("--masks", masks, "Attention kernels: comma-separated mask names (default: all; see --list)");
  app.add_option("--seeds", seeds, "Comma-separated seeds")->capture_default_str();
  app.add_option("--dtypes", dtypes, "float,double or one of them")->capture_default_str();
  app.add_option("--references", references,
                 "Comma-separated among libtorch,finite_difference,naive (default: each op's own; naive applies to "
                 "attention kernels only)");
  app.add_option("--out", out, "CSV report path (written atomically)")->capture_default_str();
  app.add_option("--full-jacobian-max", full_jacobian_max,
                 "Largest (outputs x inputs) compared as a full Jacobian; larger ones use random directions")
      ->capture_default_str();
  app.add_option("--directions", directions, "Random directions per input in the fast finite-difference mode")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  std::vector<std::string> plugins;
  std::string plugin_layouts;
  app.add_option("--plugin", plugins,
                 "An attention plugin (shared library, include/pedestrian/attention_plugin.h) checked as a variant of "
                 "op sdpa (repeatable)");
  app.add_option("--plugin-layouts", plugin_layouts,
                 "Layouts the plugins get: contiguous (default) and/or strided (transposed, padded views; variant "
                 "NAME[strided])");
  app.add_flag("--list", list, "List the ops and their default shapes, then exit");
  app.add_flag("--quiet", quiet, "No progress lines");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  SweepConfig config;
  try {
    load_plugins(plugins, plugin_layouts, std::cerr);  // before the op list is built: it names their variants
    config.ops = split(ops);
    for (const std::string& name : config.ops) find_op_case(name);
    for (const std::string& s : shapes) config.shapes.push_back(parse_dims(s));
    config.seeds.clear();
    for (const std::string& s : split(seeds)) {
      std::size_t used = 0;
      unsigned long long v = 0;
      try {
        v = std::stoull(s, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != s.size() || s.front() == '-') throw std::invalid_argument("--seeds: '" + s + "' is not a seed");
      config.seeds.push_back(v);
    }
    if (config.seeds.empty()) throw std::invalid_argument("--seeds: no seed given");
    config.dtypes.clear();
    for (const std::string& s : split(dtypes)) {
      if (s == "float") config.dtypes.push_back(Dtype::f32);
      else if (s == "double") config.dtypes.push_back(Dtype::f64);
      else throw std::invalid_argument("--dtypes: '" + s + "' is not float or double");
    }
    if (config.dtypes.empty()) throw std::invalid_argument("--dtypes: no dtype given");
    for (const std::string& s : split(references)) {
      if (s == "libtorch") config.references.push_back(Reference::libtorch);
      else if (s == "finite_difference") config.references.push_back(Reference::finite_difference);
      else if (s == "naive") config.references.push_back(Reference::naive);
      else throw std::invalid_argument("--references: '" + s + "' is not libtorch, finite_difference or naive");
    }
    config.variants = split(variants);
    config.masks = split(masks);
    auto check_choice = [](const char* option, const std::vector<std::string>& wanted, auto member) {
      for (const std::string& w : wanted) {
        bool known = false;
        for (const OpCase& c : op_cases()) {
          for (const std::string& v : c.*member) known |= v == w;
        }
        if (!known) throw std::invalid_argument(std::string(option) + ": '" + w + "' is not known (see --list)");
      }
    };
    check_choice("--variants", config.variants, &OpCase::variants);
    check_choice("--masks", config.masks, &OpCase::masks);
    config.fd.full_jacobian_max_entries = full_jacobian_max;
    config.fd.directions = directions;
    if (out.empty()) throw std::invalid_argument("--out: empty path");
  } catch (const std::invalid_argument& e) {
    std::cerr << "verify: " << e.what() << "\n";
    return 2;
  }

  if (list) {
    for (const OpCase& c : op_cases()) {
      std::cout << c.name << ":";
      for (const Dims& d : c.default_shapes) {
        std::cout << "  [" << c.make({d, c.variants.front(), c.masks.front()}, 1).shape << "]";
      }
      if (c.variants.size() > 1) {
        std::cout << "\n  variants:";
        for (const std::string& v : c.variants) std::cout << " " << v;
      }
      if (c.masks.size() > 1) {
        std::cout << "\n  masks:";
        for (const std::string& m : c.masks) std::cout << " " << m;
      }
      std::cout << "\n";
    }
    return 0;
  }

  at::set_num_threads(1);  // small shapes: threading only adds noise
  const auto start = std::chrono::steady_clock::now();
  std::vector<CheckRow> rows;
  try {
    rows = run_sweep(config, [&](const Problem& p, std::size_t done, std::size_t total) {
      if (!quiet) std::cerr << "[" << done << "/" << total << "] " << p.op << " " << p.shape << " seed=" << p.seed << "\n";
    });
  } catch (const std::invalid_argument& e) {
    std::cerr << "verify: " << e.what() << "\n";
    return 2;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  print_summary(std::cout, rows);
  try {
    write_csv_atomic(out, rows);
  } catch (const std::exception& e) {
    std::cerr << "verify: " << e.what() << "\n";
    return 2;
  }
  std::cout << "report: " << out << " (" << rows.size() << " rows, " << seconds << " s)\n";
  for (const CheckRow& r : rows) {
    if (!r.passed) return 1;
  }
  return 0;
}
