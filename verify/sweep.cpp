#include "verify/sweep.hpp"

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/errors.hpp"
#include "core/provenance.hpp"
#include "core/schemas.hpp"
#include "variants/registry.hpp"
#include "verify/footprint.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

Dims parse_dims(const std::string& text) {
  if (text.empty()) throw std::invalid_argument("parse_dims: the shape is empty, expected NAME=VALUE items such as N=5,D=8");
  Dims d;
  std::vector<std::string> seen;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t comma = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, comma - begin);
    begin = comma + 1;
    if (item.empty()) throw std::invalid_argument("parse_dims: empty item in shape '" + text + "'");
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
    if (used != value.size() || value.empty() || n < 1 || n > kMaxSize) {
      throw std::invalid_argument("parse_dims: size " + key + "=" + value + " in shape '" + text +
                                  "' is not an integer in [1, " + std::to_string(kMaxSize) + "]");
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
                         : key == "Hkv" ? &d.Hkv
                                      : nullptr;
    if (!slot) {
      throw std::invalid_argument("parse_dims: unknown size '" + key + "' in shape '" + text +
                                  "', expected one of N D H F V T R I O K B Nk Dh Hkv");
    }
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      throw std::invalid_argument("parse_dims: size " + key + " is given twice in shape '" + text + "'");
    }
    seen.push_back(key);
    *slot = n;
  }
  return d;
}

const std::vector<OpCase>& op_cases() {
  static std::vector<OpCase> cases = {
      token_embedding_case(), positional_embedding_case(), linear_case(),   lora_linear_case(),
      layer_norm_case(),      gelu_tanh_case(),            gelu_erf_case(), softmax_case(),
      cross_entropy_case(),   attention_case(),            residual_case(), feed_forward_case(),
      transformer_block_case(), sdpa_case(),            sdpa_large_scores_case(), sdpa_features_case(),
      gpt_case(), gpt_lora_case()};
  static std::size_t registered = attention_impls().size();
  if (attention_impls().size() != registered) {
    registered = attention_impls().size();
    for (OpCase& c : cases) {
      if (c.registry_variants) c.variants = c.registry_variants();
    }
  }
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

namespace {

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

bool contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

const char* const kMaskListExpected =
    "expected a comma-separated list of mask families (see verify --list) or masks in Mask::parse's text";

}  // namespace

std::vector<std::string> mask_families() {
  std::vector<std::string> names;
  for (const OpCase& c : op_cases()) {
    for (const std::string& m : c.masks) {
      if (!m.empty() && !contains(names, m)) names.push_back(m);
    }
  }
  return names;
}

bool is_mask_family(const std::string& text) { return !text.empty() && contains(mask_families(), text); }

std::optional<Mask> concrete_mask(const std::string& text) {
  if (is_mask_family(text)) return std::nullopt;
  try {
    return Mask::parse(text);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("--masks '" + printable(text) + "': neither a mask family (" + joined(mask_families()) +
                                ") nor a concrete mask: " + e.what());
  }
}

std::string mask_choice(const std::string& text) {
  const std::optional<Mask> mask = concrete_mask(text);
  return mask ? mask->name() : text;
}

std::vector<std::string> parse_mask_list(const std::string& text) {
  const std::string quoted = "--masks '" + printable(text) + "': ";
  if (text.empty()) throw std::invalid_argument(quoted + "empty, " + kMaskListExpected);
  std::vector<std::string> masks;
  for (const std::string& item : split_mask_list(text)) {
    if (item.empty()) throw std::invalid_argument(quoted + "empty item, " + kMaskListExpected);
    const std::string mask = mask_choice(item);
    if (contains(masks, mask)) throw std::invalid_argument(quoted + mask + " is given twice");
    masks.push_back(mask);
  }
  return masks;
}

std::uint32_t parse_feature_list(const std::string& text) {
  std::string known = "all, none";
  for (std::size_t i = 0; i < kAttentionFeatureCount; ++i) known += std::string(", ") + to_string(static_cast<AttentionFeature>(i));
  const std::string quoted = "--features '" + printable(text) + "': ";
  const std::string expected = "expected all, none or a comma-separated list among " + known.substr(11);
  if (text.empty()) throw std::invalid_argument(quoted + "empty, " + expected);
  if (text == "all") return kAllAttentionFeatures;
  if (text == "none") return 0;
  std::uint32_t bits = 0;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t comma = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, comma - begin);
    begin = comma + 1;
    if (item.empty()) throw std::invalid_argument(quoted + "empty item, " + expected);
    if (item == "all" || item == "none") throw std::invalid_argument(quoted + item + " must be given alone, " + expected);
    AttentionFeature f{};
    try {
      f = parse_attention_feature(item);
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument(quoted + "unknown feature '" + printable(item) + "', " + expected);
    }
    if (bits & attention_feature_bit(f)) throw std::invalid_argument(quoted + item + " is given twice");
    bits |= attention_feature_bit(f);
  }
  return bits;
}

std::string feature_list_name(std::uint32_t bits) {
  bits &= kAllAttentionFeatures;
  if (bits == 0) return "none";
  if (bits == kAllAttentionFeatures) return "all";
  std::string out;
  for (std::size_t i = 0; i < kAttentionFeatureCount; ++i) {
    const auto f = static_cast<AttentionFeature>(i);
    if (!(bits & attention_feature_bit(f))) continue;
    if (!out.empty()) out += ',';
    out += to_string(f);
  }
  return out;
}

bool op_takes_mask(const OpCase& c, const std::string& text) {
  if (text.empty()) return false;
  if (contains(c.masks, text)) return true;
  return c.check_concrete_mask && !is_mask_family(text);
}

void check_mask_fits(const OpCase& c, const std::string& text, const std::vector<Dims>& shapes) {
  const std::optional<Mask> mask = text.empty() ? std::nullopt : concrete_mask(text);
  if (!mask || !c.check_concrete_mask) return;
  for (const Dims& dims : shapes) {
    try {
      c.check_concrete_mask(*mask, dims);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("--masks '" + text + "' does not fit a shape: " + e.what());
    }
  }
}

namespace {

// An op's variants as a user reads them: "" is the op's own path (gpt's reference attention).
std::string variant_names(const std::vector<std::string>& variants) {
  std::string out;
  for (const std::string& v : variants) out += (out.empty() ? "" : ",") + (v.empty() ? std::string("its reference path") : v);
  return out;
}

std::string joined(const std::vector<Reference>& references) {
  std::vector<std::string> names;
  for (Reference r : references) names.emplace_back(to_string(r));
  return joined(names);
}

std::string gib(double bytes) {
  std::ostringstream os;
  os << std::setprecision(3) << bytes / (1024.0 * 1024.0 * 1024.0) << " GiB";
  return os.str();
}

bool contains(const std::vector<Reference>& references, Reference r) {
  return std::find(references.begin(), references.end(), r) != references.end();
}

// What the sweep runs of one op: its variants, masks and references after the filters.
struct OpPlan {
  const OpCase* op;
  std::vector<std::string> variants, masks, feature_sets;
  std::vector<Reference> references;
  const std::vector<Dims>* shapes;
};

}  // namespace

std::vector<PlannedProblem> plan_sweep(const SweepConfig& config) {
  if (!(config.memory_budget_gib > 0 && config.memory_budget_gib <= kMaxMemoryBudgetGib)) {
    std::ostringstream os;
    os << "--memory-budget-gib " << config.memory_budget_gib << ": expected a number of GiB in (0, "
       << kMaxMemoryBudgetGib << "]";
    throw std::invalid_argument(os.str());
  }
  const bool ops_named = !config.ops.empty();
  std::vector<const OpCase*> selected;
  if (ops_named) {
    for (const std::string& name : config.ops) selected.push_back(&find_op_case(name));
  } else {
    for (const OpCase& c : op_cases()) selected.push_back(&c);
  }
  // A mask text that is neither a family nor a concrete mask, before anything else about masks.
  for (const std::string& m : config.masks) concrete_mask(m);
  // Only the choices an op has: a variant or mask filter leaves ops without that choice as they are.
  auto chosen = [](const std::vector<std::string>& own, const std::vector<std::string>& wanted,
                   const std::function<bool(const std::string&)>& takes) {
    if (wanted.empty() || own == std::vector<std::string>{""}) return own;
    std::vector<std::string> out;
    for (const std::string& w : wanted) {
      if (takes(w)) out.push_back(w);
    }
    return out;
  };
  std::vector<OpPlan> plans;
  for (const OpCase* c : selected) {
    OpPlan plan{c,
                chosen(c->variants, config.variants, [c](const std::string& v) { return contains(c->variants, v); }),
                chosen(c->masks, config.masks, [c](const std::string& m) { return op_takes_mask(*c, m); }),
                {},
                {},
                config.shapes.empty() ? &c->default_shapes : &config.shapes};
    // A feature set runs when every feature it uses is selected (--features).
    for (const std::string& fs : c->feature_sets) {
      const std::uint32_t bits = fs.empty() || !c->feature_bits ? 0 : c->feature_bits(fs);
      if ((bits & ~config.features) == 0) plan.feature_sets.push_back(fs);
    }
    // naive compares with the naive attention kernel: it applies to the ops that have one
    for (Reference r : config.references.empty() ? c->references : config.references) {
      if (r != Reference::naive || contains(c->references, Reference::naive)) plan.references.push_back(r);
    }
    std::string missing;
    if (plan.variants.empty()) {
      missing = "--variants '" + joined(config.variants) + "': op " + c->name + " has none of them (its variants: " +
                variant_names(c->variants) + ")";
    } else if (plan.masks.empty()) {
      missing = "--masks '" + joined(config.masks) + "': op " + c->name + " has none of them (its masks: " +
                joined(c->masks) + (c->check_concrete_mask ? ", or a concrete mask in Mask::parse's text" : "") + ")";
    } else if (plan.feature_sets.empty()) {
      missing = "--features '" + feature_list_name(config.features) + "': op " + c->name +
                " has no feature set within them (its feature sets: " + joined(c->feature_sets) + ")";
    } else if (plan.references.empty()) {
      missing = "--references '" + joined(config.references) + "': none applies to op " + c->name +
                " (naive applies to attention kernels only; its references: " + joined(c->references) + ")";
    }
    if (missing.empty()) plans.push_back(plan);
    else if (ops_named) throw std::invalid_argument(missing);
  }
  // A concrete mask must apply to every shape of every op that runs it, before any work.
  for (const OpPlan& plan : plans) {
    for (const std::string& text : plan.masks) check_mask_fits(*plan.op, text, *plan.shapes);
  }
  if (plans.empty() || config.seeds.empty() || config.dtypes.empty()) {
    throw std::invalid_argument("--variants '" + joined(config.variants) + "', --masks '" + joined(config.masks) +
                                "', --references '" + joined(config.references) + "': the selection holds no check");
  }

  // The memory of the whole selection, before anything is allocated: every problem's inputs stay
  // until the end; checks run one at a time.
  double resident = 0, largest_check = 0, largest_case = 0, largest_jacobian = 0;
  std::size_t problems = 0;
  std::string largest_name;
  for (const OpPlan& plan : plans) {
    const std::size_t per_shape_problems = plan.variants.size() * plan.masks.size() * config.seeds.size();
    const double per_shape = static_cast<double>(per_shape_problems);
    const bool fd = contains(plan.references, Reference::finite_difference);
    for (const std::string& feature_set : plan.feature_sets) {
      for (const Dims& dims : *plan.shapes) {
        const Footprint f = footprint(plan.op->name, dims, feature_set);
        resident += per_shape * resident_bytes(f);
        problems += per_shape_problems;
        const double check = check_bytes(f, fd, config.fd.full_jacobian_max_entries);
        largest_check = std::max(largest_check, check);
        if (resident_bytes(f) + check > largest_case) {
          largest_case = resident_bytes(f) + check;
          largest_jacobian = check - check_bytes(f, false, 0);
          largest_name = plan.op->name + " [" + f.shape + "]";
        }
      }
    }
  }
  const double budget = config.memory_budget_gib * 1024.0 * 1024.0 * 1024.0;
  if (resident + largest_check > budget) {
    std::ostringstream os;
    os << "--memory-budget-gib " << config.memory_budget_gib << ": ";
    if (largest_case > budget) {
      os << "checking " << largest_name << " needs an estimated " << gib(largest_case);
      if (largest_jacobian > largest_case / 2) {
        os << " (of which " << gib(largest_jacobian) << " full Jacobians of up to --full-jacobian-max "
           << config.fd.full_jacobian_max_entries << " entries)";
      }
      os << ", above the budget; raise --memory-budget-gib or choose smaller --shape sizes";
    } else {
      os << "the " << problems << " problems of the selection need an estimated " << gib(resident + largest_check)
         << " (their inputs, held until the end, " << gib(resident) << ", and the largest check, " << largest_name
         << ", " << gib(largest_check) << "), above the budget; raise --memory-budget-gib or select fewer ops, "
         << "shapes, variants, masks or seeds";
    }
    throw std::invalid_argument(os.str());
  }

  // Build every problem before any check: a size the op cannot take is a usage error, reported
  // before any work.
  std::vector<PlannedProblem> planned;
  planned.reserve(problems);
  std::set<std::string> variants_run;
  for (const OpPlan& plan : plans) {
    for (const std::string& variant : plan.variants) {
      for (const std::string& mask : plan.masks) {
        for (const std::string& features : plan.feature_sets) {
          for (const Dims& dims : *plan.shapes) {
            const CaseParams params{dims, variant, mask, features};
            if (plan.op->runs && !plan.op->runs(params)) continue;
            for (std::uint64_t seed : config.seeds) {
              try {
                Problem p = plan.op->make(params, seed);
                // An implementation without the dtypes asked for, or one that none of the references
                // applies to (finite differences of a kernel without a backward): no check, no case.
                const bool checked = std::any_of(config.dtypes.begin(), config.dtypes.end(), [&](Dtype d) {
                  return std::any_of(plan.references.begin(), plan.references.end(),
                                     [&](Reference r) { return check_runs(p, d, r); });
                });
                if (!checked) continue;
                variants_run.insert(variant);
                planned.push_back({std::move(p), plan.references, params});
              } catch (const std::invalid_argument& e) {
                if (config.shapes.empty()) throw;
                throw std::invalid_argument(std::string("--shape: ") + e.what());
              }
            }
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
                                  "' has nothing to check with the ops, masks, dtypes and references asked for (the mask "
                                  "kinds and dtypes it takes are printed when its plugin loads; finite differences "
                                  "need a backward)");
    }
  }
  if (planned.empty()) {
    throw std::invalid_argument(
        "plan_sweep: the ops, variants, masks, dtypes and references asked for select nothing (--dtypes bfloat16 "
        "and float16 apply to attention plugins that declare them; finite differences need a backward)");
  }
  return planned;
}

std::vector<CheckRow> run_planned(const std::vector<PlannedProblem>& planned, const SweepConfig& config,
                                  const ProgressFn& progress) {
  std::vector<CheckRow> rows;
  for (std::size_t i = 0; i < planned.size(); ++i) {
    std::vector<CheckRow> part =
        check_problem(planned[i].problem, config.dtypes, planned[i].references, config.fd, config.tolerance_scale,
                      config.isolated_time_limit);
    rows.insert(rows.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
    if (progress) progress(planned[i].problem, i + 1, planned.size());
  }
  return rows;
}

std::vector<CheckRow> run_sweep(const SweepConfig& config, const ProgressFn& progress) {
  return run_planned(plan_sweep(config), config, progress);
}

std::string case_key(const Problem& p) { return schema::verify_case_key(p.op, p.variant, p.shape, p.mask, p.seed); }

std::uint64_t case_cost(const PlannedProblem& planned, const SweepConfig& config) {
  const Problem& p = planned.problem;
  const Footprint f = footprint(p.op, planned.params.dims, planned.params.features);
  const std::size_t differentiable_tensors = p.differentiable_indices().size();
  std::uint64_t cost = 0;
  // The checks check_problem runs, skipped as it skips them.
  for (Dtype dt : config.dtypes) {
    for (Reference ref : planned.references) {
      if (!check_runs(p, dt, ref)) continue;
      const std::uint64_t c = check_cost(f, differentiable_tensors, dt, ref, config.fd, p.isolate);
      cost = c > UINT64_MAX - cost ? UINT64_MAX : cost + c;
    }
  }
  return std::max<std::uint64_t>(cost, 1);  // every case weighs something: each shard gets one while there are enough
}

SweepCases sweep_cases(const std::vector<PlannedProblem>& planned, const SweepConfig& config) {
  SweepCases cases;
  cases.keys.reserve(planned.size());
  cases.costs.reserve(planned.size());
  std::set<std::string> seen;
  for (const PlannedProblem& pp : planned) {
    std::string key = case_key(pp.problem);
    if (!seen.insert(key).second) {
      throw std::invalid_argument("the selection holds two problems named '" + printable(key) +
                                  "' (a --shape whose sizes differ only in sizes the op does not use?): their rows "
                                  "could not be told apart");
    }
    cases.keys.push_back(std::move(key));
    cases.costs.push_back(case_cost(pp, config));
  }
  return cases;
}

namespace {

std::string dims_text(const Dims& d) {
  std::ostringstream os;
  os << "N=" << d.N << ",D=" << d.D << ",H=" << d.H << ",F=" << d.F << ",V=" << d.V << ",T=" << d.T << ",R=" << d.R
     << ",I=" << d.I << ",O=" << d.O << ",K=" << d.K << ",B=" << d.B << ",Nk=" << d.Nk << ",Dh=" << d.Dh
     << ",Hkv=" << d.Hkv;
  return os.str();
}

}  // namespace

std::string sweep_settings(const SweepConfig& config, const std::vector<std::string>& plugins,
                           const std::string& plugin_layouts) {
  const auto list = [](const std::vector<std::string>& items) { return items.empty() ? std::string("default") : joined(items); };
  std::ostringstream os;
  os << "ops=" << list(config.ops) << " shapes=";
  if (config.shapes.empty()) os << "default";
  for (const Dims& d : config.shapes) os << "[" << dims_text(d) << "]";
  os << " variants=" << list(config.variants) << " masks=" << list(config.masks)
     << " features=" << feature_list_name(config.features) << " seeds=";
  for (std::size_t i = 0; i < config.seeds.size(); ++i) os << (i ? "," : "") << config.seeds[i];
  os << " dtypes=";
  for (std::size_t i = 0; i < config.dtypes.size(); ++i) os << (i ? "," : "") << to_string(config.dtypes[i]);
  os << " references=" << (config.references.empty() ? std::string("default") : joined(config.references))
     << " full_jacobian_max=" << config.fd.full_jacobian_max_entries << " directions=" << config.fd.directions
     << " tolerance_scale=" << std::setprecision(17) << config.tolerance_scale << " plugins=";
  if (plugins.empty()) os << "none";
  for (std::size_t i = 0; i < plugins.size(); ++i) {
    os << (i ? "," : "") << printable(std::filesystem::path(plugins[i]).filename().string());
  }
  os << " plugin_layouts=" << (plugin_layouts.empty() ? std::string("default") : printable(plugin_layouts))
     << " plugin_timeout_ms=" << config.isolated_time_limit.count();
  return os.str();
}

std::string default_sweep_settings() { return sweep_settings(SweepConfig{}); }

ShardManifest verify_shard_manifest(const SweepCases& cases, const ShardSpec& shard, const SweepConfig& config,
                                    const std::vector<std::string>& plugins, const std::string& plugin_layouts) {
  ShardManifest m = make_shard_manifest(cases.keys, cases.costs, shard);
  m.tool = "verify";
  m.git_rev = source_revision();
  m.host_kind = host_kind();
  m.settings = sweep_settings(config, plugins, plugin_layouts);
  m.profile = m.settings == default_sweep_settings() ? "default" : "custom";
  return m;
}

}  // namespace ped::verify
