#include "verify/sweep.hpp"

#include <algorithm>
#include <set>
#include <sstream>
#include <stdexcept>

#include "verify/ops/op_cases.hpp"

namespace ped::verify {

Dims parse_dims(const std::string& text) {
  Dims d;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) {
      throw std::invalid_argument("parse_dims: '" + item + "' in shape '" + text + "' is not NAME=VALUE");
    }
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    std::size_t used = 0;
    long long n = 0;
    try {
      n = std::stoll(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != value.size() || value.empty() || n < 1 || n > 1'000'000) {
      throw std::invalid_argument("parse_dims: size " + key + "=" + value + " in shape '" + text +
                                  "' is not an integer in [1, 1000000]");
    }
    std::int64_t* slot = key == "N"   ? &d.N
                         : key == "D" ? &d.D
                         : key == "H" ? &d.H
                         : key == "F" ? &d.F
                         : key == "V" ? &d.V
                         : key == "T" ? &d.T
                         : key == "R" ? &d.R
                         : key == "I" ? &d.I
                         : key == "O" ? &d.O
                         : key == "K" ? &d.K
                         : key == "B" ? &d.B
                         : key == "Nk" ? &d.Nk
                         : key == "Dh" ? &d.Dh
                                      : nullptr;
    if (!slot) {
      throw std::invalid_argument("parse_dims: unknown size '" + key + "' in shape '" + text +
                                  "', expected one of N D H F V T R I O K B Nk Dh");
    }
    *slot = n;
  }
  return d;
}

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = {
      token_embedding_case(), positional_embedding_case(), linear_case(),   lora_linear_case(),
      layer_norm_case(),      gelu_tanh_case(),            gelu_erf_case(), softmax_case(),
      cross_entropy_case(),   attention_case(),            residual_case(), feed_forward_case(),
      transformer_block_case(), sdpa_case(),            sdpa_large_scores_case(), gpt_case(),
      gpt_lora_case()};
  return cases;
}

const OpCase& find_op_case(const std::string& name) {
  for (const OpCase& c : op_cases()) {
    if (c.name == name) return c;
  }
  std::string known;
  for (const OpCase& c : op_cases()) known += (known.empty() ? "" : ", ") + c.name;
  throw std::invalid_argument("find_op_case: unknown op '" + name + "', expected one of: " + known);
}

std::vector<CheckRow> run_sweep(const SweepConfig& config, const ProgressFn& progress) {
  std::vector<const OpCase*> selected;
  if (config.ops.empty()) {
    for (const OpCase& c : op_cases()) selected.push_back(&c);
  } else {
    for (const std::string& name : config.ops) selected.push_back(&find_op_case(name));
  }
  // Only the choices an op has: a variant or mask filter leaves ops without that choice as they are.
  auto chosen = [](const std::vector<std::string>& own, const std::vector<std::string>& wanted) {
    if (wanted.empty() || own == std::vector<std::string>{""}) return own;
    std::vector<std::string> out;
    for (const std::string& w : wanted) {
      for (const std::string& o : own) {
        if (o == w) out.push_back(w);
      }
    }
    return out;
  };
  // Build every problem first: a size the op cannot take is a usage error, reported before any work.
  std::vector<Problem> problems;
  std::vector<const OpCase*> problem_case;
  std::set<std::string> variants_run;
  for (const OpCase* c : selected) {
    const std::vector<Dims>& shapes = config.shapes.empty() ? c->default_shapes : config.shapes;
    for (const std::string& variant : chosen(c->variants, config.variants)) {
      for (const std::string& mask : chosen(c->masks, config.masks)) {
        for (const Dims& dims : shapes) {
          if (c->runs && !c->runs(CaseParams{dims, variant, mask})) continue;
          for (std::uint64_t seed : config.seeds) {
            Problem p = c->make(CaseParams{dims, variant, mask}, seed);
            if (std::none_of(config.dtypes.begin(), config.dtypes.end(), [&](Dtype d) { return p.has_dtype(d); })) {
              continue;  // an implementation without the dtypes asked for
            }
            variants_run.insert(variant);
            problems.push_back(std::move(p));
            problem_case.push_back(c);
          }
        }
      }
    }
  }
  // A variant asked for that checks nothing (an implementation that takes none of the masks or
  // dtypes asked for) would let the run pass without looking at it.
  for (const std::string& variant : config.variants) {
    if (!variants_run.contains(variant)) {
      throw std::invalid_argument("--variants: '" + variant +
                                  "' has nothing to check with the ops, masks and dtypes asked for (the mask kinds "
                                  "and dtypes it takes are printed when its plugin loads)");
    }
  }
  if (problems.empty()) throw std::invalid_argument("run_sweep: the ops, variants and masks asked for select nothing");
  std::vector<CheckRow> rows;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    const std::vector<Reference>& refs = config.references.empty() ? problem_case[i]->references : config.references;
    std::vector<CheckRow> part = check_problem(problems[i], config.dtypes, refs, config.fd);
    rows.insert(rows.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
    if (progress) progress(problems[i], i + 1, problems.size());
  }
  return rows;
}

}  // namespace ped::verify
