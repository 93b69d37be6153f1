// The registry of ops under test and the sweep over ops x shapes x seeds x dtypes x references.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/mask.hpp"
#include "core/shard.hpp"
#include "variants/attention.hpp"
#include "verify/checks.hpp"

namespace ped::verify {

// Sizes an op may use; each op reads the ones it needs and names them in its shape string.
// N tokens (queries), D model width, H heads, F feed-forward width, V vocabulary, T positional table
// length, R LoRA rank, I and O input and output widths of a linear layer, K columns of a score
// matrix, B batch, Nk keys of an attention kernel (0: as many as queries), Dh its head dim, Hkv its
// key/value heads under grouped-query attention (0: the op's default; sdpa_features only).
struct Dims {
  std::int64_t N = 4, D = 8, H = 2, F = 12, V = 7, T = 9, R = 2, I = 6, O = 5, K = 6, B = 1, Nk = 0, Dh = 8, Hkv = 0;
  bool operator==(const Dims&) const = default;
};

// The range of every size parse_dims accepts.
inline constexpr std::int64_t kMaxSize = 1'000'000;

// What one problem is made of: sizes, and for attention kernels the variant and the mask.
struct CaseParams {
  Dims dims;
  std::string variant;  // empty for reference layers
  std::string mask;     // empty where the op has no mask choice
  std::string features;  // attention ops with features: the feature set's name (OpCase::feature_sets); else empty
};

// Parses "N=5,D=8" (unnamed sizes keep their defaults); throws std::invalid_argument on an empty text,
// an item that is not NAME=VALUE, an unknown name, a name given twice or a value outside [1, 1000000].
Dims parse_dims(const std::string& text);

struct OpCase {
  std::string name;
  std::vector<Dims> default_shapes;
  std::function<Problem(const CaseParams&, std::uint64_t seed)> make;
  std::vector<std::string> variants = {""};  // attention kernels: the variants it runs
  std::vector<std::string> masks = {""};     // attention kernels: the mask families it runs
  // Ops that also take a concrete mask (Mask::parse's text) where a family name goes. Throws
  // std::invalid_argument naming the op and the shape when the mask cannot apply to the sizes
  // (Mask::validate: an explicit block layout of another size). Empty: the op takes its families only.
  std::function<void(const Mask&, const Dims&)> check_concrete_mask;
  // The references this op is checked against by default (attention kernels add naive).
  std::vector<Reference> references = {Reference::libtorch, Reference::finite_difference};
  // Whether a variant x mask combination runs (an implementation that does not take a mask kind
  // skips it); empty: every combination.
  std::function<bool(const CaseParams&)> runs;
  // Attention ops: `variants` from the registry of attention implementations, which grows when a
  // plugin or a kernel checked through verify/harness.hpp registers; op_cases() calls it again then.
  std::function<std::vector<std::string>()> registry_variants;
  // Attention ops with AttentionFeatures (sdpa_features): the named feature sets it runs, and the
  // AttentionFeature bits each uses (attention_feature_bit). {""}: the op has no feature choice.
  // SweepConfig::features selects the sets whose bits it holds; `runs` leaves out an implementation
  // that does not declare them (AttentionImpl::features), so new features are picked up from the bits.
  std::vector<std::string> feature_sets = {""};
  std::function<std::uint32_t(const std::string&)> feature_bits;
};

// Every op of the reference library, in the order the README's table lists them; the attention ops'
// variants are those registered at the time of the call (the OpCase addresses stay the same).
const std::vector<OpCase>& op_cases();
const OpCase& find_op_case(const std::string& name);  // throws std::invalid_argument if unknown

// The masks of a sweep (SweepConfig::masks, verify --masks, AttentionCheckOptions::masks) are texts,
// each either
//   - a mask family, one of mask_families(): each op's sample of that kind, sized to each shape
//     (verify/ops/sdpa_case.cpp); the CSV's mask column holds the family name; or
//   - a concrete mask in Mask::parse's text (core/mask.hpp), e.g. "sliding_window(left=256,right=0)",
//     run as it is at every shape of the ops that take concrete masks; the mask column holds its
//     Mask::name(), which Mask::parse reads back.
// A text that is a family name is the family ("causal" and "none" are both, and mean the same).
std::vector<std::string> mask_families();  // over every op, in op order
bool is_mask_family(const std::string& text);
// The mask a concrete-mask text names; std::nullopt for a family name. Throws std::invalid_argument
// naming --masks, the text, the families and Mask::parse's error for a text that is neither.
std::optional<Mask> concrete_mask(const std::string& text);
// The text as the sweep runs and reports it: a family name unchanged, a concrete mask as its
// Mask::name() (Mask::parse accepts only that canonical text, so the text itself). Throws as
// concrete_mask.
std::string mask_choice(const std::string& text);
// A --masks value: its items split as bench --masks splits them (split_mask_list: commas inside a
// mask's parentheses do not split), each through mask_choice. Throws std::invalid_argument naming
// --masks and the value for an empty value or item, an item given twice, or an item mask_choice refuses.
std::vector<std::string> parse_mask_list(const std::string& text);
// A --features value: "all" (every feature set), "none" (none: plain attention only), or a
// comma-separated list of AttentionFeature names (attention.hpp: grouped_query, alibi, softcap,
// variable_length, dropout, sinks), whose bits SweepConfig::features then holds. Throws
// std::invalid_argument naming --features and the value for an empty value or item, an unknown
// name, a name given twice, or "all" / "none" among other items.
std::uint32_t parse_feature_list(const std::string& text);
// The names of `bits` joined by ',' in AttentionFeature order; "none" for 0, "all" for every bit.
std::string feature_list_name(std::uint32_t bits);
// Whether op c runs the mask text: a family it lists, or a concrete mask where it takes those.
bool op_takes_mask(const OpCase& c, const std::string& text);
// Throws std::invalid_argument naming --masks, the mask, the op and the shape when the text is a
// concrete mask that does not fit one of `shapes` of op c (plan_sweep calls it for every op and mask
// it plans, before any problem is built).
void check_mask_fits(const OpCase& c, const std::string& text, const std::vector<Dims>& shapes);

inline constexpr double kDefaultMemoryBudgetGib = 8;
inline constexpr double kMaxMemoryBudgetGib = 1 << 20;  // 1 PiB: a budget, not a way to switch the estimate off

struct SweepConfig {
  std::vector<std::string> ops;          // empty: every op
  std::vector<Dims> shapes;              // empty: each op's default shapes
  std::vector<std::string> variants;     // empty: each op's variants
  std::vector<std::string> masks;        // empty: each op's mask families; else families or concrete masks
  // The AttentionFeature bits (attention_feature_bit) whose feature sets run: a set runs when every
  // feature it uses is among them (verify --features; 0: none of the sets, only plain attention).
  std::uint32_t features = kAllAttentionFeatures;
  std::vector<std::uint64_t> seeds = {1, 2};
  std::vector<Dtype> dtypes = {Dtype::f32, Dtype::f64};
  std::vector<Reference> references;     // empty: each op's references
  FiniteDifferenceOptions fd;
  // The estimated peak memory of the sweep (verify/footprint.hpp) may not exceed this.
  double memory_budget_gib = kDefaultMemoryBudgetGib;
  // Every tolerance is multiplied by this, in (0, 1]: it can only tighten a check (check_problem).
  double tolerance_scale = 1;
  // The wall-clock time each check of a problem marked `isolate` (a plugin) may run in its child
  // process; past it the check is a failed row (check_one_in_child). Zero: no limit.
  std::chrono::milliseconds isolated_time_limit = plugin::kDefaultPluginTimeLimit;
};

// One problem of the sweep and the references it is checked against.
struct PlannedProblem {
  Problem problem;
  std::vector<Reference> references;
  CaseParams params;  // what it was made from: its sizes (the footprint's and the cost's) and feature set
};

// Every problem of the selection, in run order, built only after the memory of the whole selection
// was estimated. Throws std::invalid_argument, naming the option of the verify command at fault,
// before any problem is built when
//   - the estimated peak (every problem's inputs, held until the end, plus the largest check)
//     exceeds memory_budget_gib (--memory-budget-gib, or the sizes of --shape);
//   - a mask is neither a family nor a Mask::parse text, or a concrete mask does not fit a shape of
//     an op that takes it (--masks);
//   - an op named in `ops` gets no check: none of its variants or masks is selected (--variants,
//     --masks), or none of `references` applies to it (naive applies to attention kernels only);
//   - the selection holds no check at all;
// and while building, when an op cannot take the sizes (--shape), or when a variant asked for gets no
// check (its problems lack the dtypes asked for, or no reference applies: check_runs, e.g. finite
// differences of a kernel without a backward). A problem without a check is left out of the plan: it
// would write no row, and a shard's manifest would list a case its CSV does not hold.
std::vector<PlannedProblem> plan_sweep(const SweepConfig& config);

using ProgressFn = std::function<void(const Problem&, std::size_t done, std::size_t total)>;

// Checks every planned problem; `config` gives the dtypes, finite-difference options, tolerance scale
// and the time limit of isolated checks.
std::vector<CheckRow> run_planned(const std::vector<PlannedProblem>& planned, const SweepConfig& config,
                                  const ProgressFn& progress = {});

// plan_sweep, then run_planned.
std::vector<CheckRow> run_sweep(const SweepConfig& config, const ProgressFn& progress = {});

// Cases: one case of the sweep is one planned problem, named by schema::verify_case_key of its op,
// variant, shape, mask and seed. Every CSV row of the problem carries these five values, so a row
// belongs to exactly one case (report merge maps rows to cases by them). verify --shard I/N runs the
// cases core/shard.hpp's shard_cases gives shard I of N, in sweep order; verify --list-cases prints
// them with their shard and cost.
std::string case_key(const Problem& problem);

// The estimated time of checking one planned problem with `config`'s dtypes and finite-difference
// options: check_cost (verify/footprint.hpp) of its footprint. An integer, the same on every machine.
std::uint64_t case_cost(const PlannedProblem& planned, const SweepConfig& config);

struct SweepCases {
  std::vector<std::string> keys;
  std::vector<std::uint64_t> costs;
};

// The keys and costs of every planned problem, in sweep order. Throws std::invalid_argument naming
// the key when two problems share one (their rows could not be told apart: only a --shape list whose
// items differ in sizes an op does not use makes such a selection).
SweepCases sweep_cases(const std::vector<PlannedProblem>& planned, const SweepConfig& config);

// One canonical line of every setting that changes the case list or the verdicts: ops, shapes,
// variants, masks, features, seeds, dtypes, references, full-Jacobian maximum, directions, tolerance
// scale, the plugins (file names, not directories) with their layouts and time limit. Each as it was
// parsed (the defaults spelled "default"), so "--seeds 1,2" and no --seeds give the same line. The
// memory budget is left out: it refuses a selection or changes nothing. The shard manifest's
// `settings`; its `profile` is "default" when this equals default_sweep_settings().
std::string sweep_settings(const SweepConfig& config, const std::vector<std::string>& plugins = {},
                           const std::string& plugin_layouts = "");
std::string default_sweep_settings();

// The manifest of shard `shard` of the selection whose cases are `cases` (sweep_cases of the whole
// selection, not of the shard): make_shard_manifest's fields, tool "verify", git_rev
// source_revision(), host_kind host_kind(), settings sweep_settings(config, plugins,
// plugin_layouts), and profile "default" when those are default_sweep_settings(), else "custom".
ShardManifest verify_shard_manifest(const SweepCases& cases, const ShardSpec& shard, const SweepConfig& config,
                                    const std::vector<std::string>& plugins = {},
                                    const std::string& plugin_layouts = "");

}  // namespace ped::verify
