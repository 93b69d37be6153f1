#include "bench/bench_config.hpp"

#include "core/numbers.hpp"
#include "core/schemas.hpp"
#include "plugin_host/plugin_loader.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace ped::bench {
namespace {

template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  os << "bench: ";
  (os << ... << parts);
  throw std::invalid_argument(os.str());
}

// The items of a comma-separated list, empty ones included ("1,,2" has three, "" one).
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> parts(1);
  for (char c : text) {
    if (c == ',') {
      parts.emplace_back();
    } else {
      parts.back().push_back(c);
    }
  }
  return parts;
}

// Each numeric option's range: far above any sweep, low enough that no product of sizes in the FLOP
// model, the memory estimates or the benchmarks' buffers overflows 64 bits before the memory budget
// skips the case.
struct Range {
  std::int64_t lo, hi;
};
Range integer_range(const std::string& option) {
  if (option == "threads") return {1, 1024};
  if (option == "seq-lens" || option == "layer-tokens") return {1, 131072};
  if (option == "head-dims") return {1, 1024};
  if (option == "batch" || option == "heads") return {1, 65536};
  if (option == "repetitions") return {1, 100000};
  if (option == "iterations") return {1, 1'000'000'000'000};
  if (option == "gemm-size") return {1, 46340};  // cblas takes int sizes: n^2 must fit an int
  if (option == "heads-kv") return {1, 65536};
  if (option == "feature-seq-lens") return {1, 131072};
  if (option == "decode-queries") return {1, 4096};
  if (option == "decode-keys") return {1, 1048576};
  if (option == "copy-bytes") return {1, std::int64_t{1} << 34};  // 16 GiB, twice of it mapped
  fail("no integer range for --", option);
}
double real_limit(const std::string& option) {
  if (option == "memory-budget-gib") return 1 << 20;  // 1 PiB
  if (option == "min-time") return 86400;            // a day per repetition
  if (option == "plugin-timeout") return 86400;      // a day per trial run
  fail("no range for --", option);
}

std::string expected_integer(const std::string& option) {
  const Range r = integer_range(option);
  return "an integer in [" + std::to_string(r.lo) + ", " + std::to_string(r.hi) + "]";
}

// The whole text as an integer of the option's range: no sign but '-', no space, no fraction.
std::int64_t parse_integer(const std::string& option, const std::string& text) {
  const Range r = integer_range(option);
  const std::optional<std::int64_t> value = parse_integer_in<std::int64_t>(text, r.lo, r.hi);
  if (!value) fail("--", option, " expects ", expected_integer(option), ", got '", text, "'");
  return *value;
}

// The whole text as a finite number in (0, limit].
double parse_positive_real(const std::string& option, const std::string& text) {
  const double limit = real_limit(option);
  const std::optional<double> value = parse_real_in(text, 0.0, true, limit, false);
  if (!value) fail("--", option, " expects a finite number in (0, ", static_cast<long long>(limit), "], got '", text, "'");
  return *value;
}

bool parse_switch(const std::string& option, const std::string& text) {
  if (text == "on" || text == "true" || text == "1") return true;
  if (text == "off" || text == "false" || text == "0") return false;
  fail("--", option, " expects on|off, got '", text, "'");
}

template <class T, class Parse>
std::vector<T> parse_names(const std::string& option, const std::string& text, Parse parse) {
  std::vector<T> values;
  for (const std::string& name : split_list(text)) {
    if (name.empty()) fail("--", option, " expects a comma-separated list of names, got an empty item in '", text, "'");
    const std::optional<T> value = parse(name);
    if (!value) fail("--", option, ": unknown name '", name, "'");
    values.push_back(*value);
  }
  return values;
}

std::vector<std::int64_t> parse_sizes(const std::string& option, const std::string& text) {
  std::vector<std::int64_t> values;
  for (const std::string& item : split_list(text)) {
    if (item.empty()) {
      fail("--", option, " expects a comma-separated list of ", expected_integer(option), ", got an empty item in '",
           text, "'");
    }
    values.push_back(parse_integer(option, item));
  }
  return values;
}

const char* const kOptionNames[] = {"profile",     "threads", "memory-budget-gib", "variants",   "passes",
                                    "masks",       "seq-lens", "head-dims",        "batch",      "heads",
                                    "repetitions", "min-time", "iterations",       "layers",     "layer-tokens",
                                    "gemm-size",   "gemm",     "dry-run",          "plugin",     "plugin-timeout",
                                    "allocator",   "allocator-probe", "cases",          "heads-kv",   "feature-seq-lens",
                                    "decode-queries", "decode-keys", "copy-bytes", "shard", "list-cases"};
// Options that are flags on the command line: given without a value they mean "on" (and never take
// the next argument); --name=on|off sets them explicitly.
const char* const kFlagNames[] = {"list-cases"};

std::string env_name(const std::string& option) {
  std::string name = "PED_BENCH_";
  for (char c : option) name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

void apply(BenchConfig& config, const std::string& option, const std::string& value) {
  if (option == "threads") {
    config.threads = static_cast<int>(parse_integer(option, value));
  } else if (option == "memory-budget-gib") {
    config.memory_budget_gib = parse_positive_real(option, value);
  } else if (option == "variants") {
    config.contenders = parse_names<Contender>(option, value, parse_contender);
  } else if (option == "passes") {
    config.passes = parse_names<Pass>(option, value, parse_pass);
  } else if (option == "masks") {
    config.masks = parse_masks(option, value);
  } else if (option == "seq-lens") {
    config.seq_lens = parse_sizes(option, value);
  } else if (option == "head-dims") {
    config.head_dims = parse_sizes(option, value);
  } else if (option == "batch") {
    config.batch = parse_integer(option, value);
  } else if (option == "heads") {
    config.heads = parse_integer(option, value);
  } else if (option == "repetitions") {
    config.repetitions = static_cast<int>(parse_integer(option, value));
  } else if (option == "min-time") {
    config.min_time = parse_positive_real(option, value);
  } else if (option == "iterations") {
    config.iterations = parse_integer(option, value);
  } else if (option == "layers") {
    config.layers = parse_switch(option, value);
  } else if (option == "layer-tokens") {
    config.layer_tokens = parse_sizes(option, value);
  } else if (option == "gemm-size") {
    config.gemm_size = parse_integer(option, value);
  } else if (option == "gemm") {
    config.gemm = parse_switch(option, value);
  } else if (option == "dry-run") {
    config.dry_run = parse_switch(option, value);
  } else if (option == "plugin-timeout") {
    config.plugin_timeout = parse_positive_real(option, value);
  } else if (option == "allocator") {
    const std::optional<AllocatorSetting> setting = parse_allocator(value);
    if (!setting) fail("--", option, " expects tuned|default, got '", value, "'");
    config.allocator = *setting;
  } else if (option == "allocator-probe") {
    config.allocator_probe = parse_switch(option, value);
  } else if (option == "cases") {
    config.cases = parse_names<CaseKind>(option, value, parse_case_kind);
  } else if (option == "heads-kv") {
    config.heads_kv = parse_integer(option, value);
  } else if (option == "feature-seq-lens") {
    config.feature_seq_lens = parse_sizes(option, value);
  } else if (option == "decode-queries") {
    config.decode_queries = parse_sizes(option, value);
  } else if (option == "decode-keys") {
    config.decode_keys = parse_sizes(option, value);
  } else if (option == "copy-bytes") {
    config.copy_bytes = parse_integer(option, value);
  } else if (option == "shard") {
    try {
      config.shard = parse_shard("--shard", value);
    } catch (const std::invalid_argument& error) {
      fail(error.what());
    }
  } else if (option == "list-cases") {
    config.list_cases = parse_switch(option, value);
  } else {
    fail("unknown option --", option);
  }
}

// PED_BENCH_PLUGIN: paths separated by ':'.
std::vector<std::string> split_paths(const std::string& text) {
  std::vector<std::string> paths;
  std::string path;
  std::istringstream in(text);
  while (std::getline(in, path, ':')) {
    if (!path.empty()) paths.push_back(path);
  }
  return paths;
}

// Loads each library as a float contender (contiguous tensors; outputs not NaN-filled, so that
// only the kernel is timed). A path this process loaded already is not loaded again.
void load_plugins(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    bool loaded = false;
    for (const plugin::LoadedPlugin& p : plugin::loaded_plugins()) loaded |= p.path == path;
    if (loaded) continue;
    try {
      const plugin::LoadedPlugin p =
          plugin::load_attention_plugin(path, {.layouts = {plugin::PluginLayout::contiguous}, .fill_outputs_with_nan = false});
      if (!p.float32) fail("--plugin ", path, ": plugin '", p.name, "' has no float32 kernel, and bench runs float");
      std::fprintf(stderr, "bench: plugin %s\n", plugin::describe(p).c_str());
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      if (what.starts_with("bench: ")) throw;
      fail("--plugin: ", what);
    }
  }
}

}  // namespace

const char* to_string(const Contender& c) { return c.name.c_str(); }

const char* to_string(Pass p) {
  switch (p) {
    case Pass::forward: return "forward";
    case Pass::backward: return "backward";
    case Pass::forward_backward: return "forward_backward";
  }
  return "?";
}

std::optional<Contender> parse_contender(const std::string& text) {
  for (const Contender& c : all_contenders()) {
    if (text == c.name) return c;
  }
  return std::nullopt;
}

std::vector<Contender> all_contenders() {
  std::vector<Contender> contenders;
  for (const AttentionImpl* impl : attention_impls()) {
    // Layout variants ("name[strided]") are verify's; benchmark names keep to [a-z0-9_].
    if (impl->supports<float>() && impl->name.find('[') == std::string::npos) contenders.push_back({impl->name});
  }
  for (const LibTorchContender& t : libtorch_contenders()) {
    if (!t.glibc_default_probe) contenders.push_back(t.contender);
  }
  return contenders;
}

const std::vector<LibTorchContender>& libtorch_contenders() {
  static const std::vector<LibTorchContender> list = {
      {.contender = Contender::libtorch_sdpa, .formulation = LibTorchFormulation::sdpa},
      {.contender = Contender::libtorch_composed, .formulation = LibTorchFormulation::composed},
      {.contender = {"libtorch_addmm"}, .formulation = LibTorchFormulation::addmm},
      {.contender = {std::string(Contender::libtorch_sdpa.name) + std::string(schema::glibc_default_suffix)},
       .formulation = LibTorchFormulation::sdpa,
       .glibc_default_probe = true},
  };
  return list;
}

const LibTorchContender* libtorch_contender(const Contender& c) {
  for (const LibTorchContender& t : libtorch_contenders()) {
    if (t.contender == c) return &t;
  }
  return nullptr;
}

bool runs(const Contender& c, Pass pass, const Mask& m) {
  if (is_libtorch(c)) return true;
  const AttentionImpl& impl = implementation_of(c);
  return impl.supports(m) && (pass == Pass::forward || impl.has_backward<float>());
}

bool runs(const AttentionCase& c) {
  if (!runs(c.contender, c.pass, c.mask)) return false;
  return is_libtorch(c.contender) || implementation_of(c.contender).supports_features(c.features());
}

const char* to_string(CaseKind kind) {
  switch (kind) {
    case CaseKind::plain: return "plain";
    case CaseKind::grouped_query: return "grouped_query";
    case CaseKind::variable_length: return "variable_length";
    case CaseKind::decoding: return "decoding";
  }
  return "?";
}

std::optional<CaseKind> parse_case_kind(const std::string& text) {
  for (CaseKind k : {CaseKind::plain, CaseKind::grouped_query, CaseKind::variable_length, CaseKind::decoding}) {
    if (text == to_string(k)) return k;
  }
  return std::nullopt;
}

std::int64_t default_heads_kv(std::int64_t heads) {
  if (heads % 4 == 0) return heads / 4;
  return heads > 1 ? 1 : 0;
}

std::string mixed_lengths_profile(std::uint64_t seed) { return "mixed(seed=" + std::to_string(seed) + ")"; }

std::vector<std::int64_t> mixed_lengths(std::uint64_t seed, std::int64_t batch, std::int64_t n) {
  if (batch < 1 || n < 1) {
    throw std::invalid_argument("mixed_lengths: batch " + std::to_string(batch) + " and n " + std::to_string(n) +
                                " must both be >= 1");
  }
  const std::int64_t low = std::max<std::int64_t>(1, n / 8);
  const auto span = static_cast<std::uint64_t>(n - low + 1);
  std::vector<std::int64_t> lengths = {n};
  std::uint64_t state = seed;
  for (std::int64_t b = 1; b < batch; ++b) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);  // splitmix64
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    lengths.push_back(low + static_cast<std::int64_t>(z % span));
  }
  return lengths;
}

std::vector<std::int64_t> AttentionCase::lengths() const {
  if (!lengths_seed) return {};
  return mixed_lengths(*lengths_seed, batch, seq_len);
}

std::string AttentionCase::lengths_profile() const {
  return lengths_seed ? mixed_lengths_profile(*lengths_seed) : std::string();
}

std::uint32_t AttentionCase::features() const {
  std::uint32_t bits = 0;
  if (kv_heads() != heads) bits |= attention_feature_bit(AttentionFeature::grouped_query);
  if (lengths_seed) bits |= attention_feature_bit(AttentionFeature::variable_length);
  return bits;
}

std::optional<Pass> parse_pass(const std::string& text) {
  for (Pass p : {Pass::forward, Pass::backward, Pass::forward_backward}) {
    if (text == to_string(p)) return p;
  }
  return std::nullopt;
}

std::vector<Mask> parse_masks(const std::string& option, const std::string& text) {
  std::vector<Mask> masks;
  for (const std::string& item : split_mask_list(text)) {
    if (item.empty()) fail("--", option, " expects a comma-separated list of masks, got an empty item in '", text, "'");
    try {
      masks.push_back(Mask::parse(item));
    } catch (const std::invalid_argument& error) {
      fail("--", option, ": ", error.what());
    }
  }
  return masks;
}

bool is_libtorch(const Contender& c) { return libtorch_contender(c) != nullptr; }

const AttentionImpl& implementation_of(const Contender& c) {
  if (is_libtorch(c)) throw std::invalid_argument("implementation_of: " + c.name + " is a LibTorch baseline");
  return attention_impl(c.name);
}

std::string AttentionCase::name() const {
  std::ostringstream os;
  os << "attention/" << to_string(contender) << '/' << to_string(pass) << "/float/" << mask.name() << "/B:" << batch
     << "/H:" << heads;
  if (kv_heads() != heads) os << "/Hkv:" << kv_heads();
  if (queries() != seq_len) os << "/Nq:" << queries();
  os << "/N:" << seq_len << "/d:" << head_dim;
  if (lengths_seed) os << "/L:" << lengths_profile();
  os << "/T:" << threads;
  return os.str();
}

namespace {
double pass_factor(Pass pass) {
  switch (pass) {
    case Pass::forward: return 1.0;
    case Pass::backward: return 2.5;
    case Pass::forward_backward: return 3.5;
  }
  return 1.0;
}
}  // namespace

std::int64_t visible_pairs(const Mask& mask, std::int64_t seq_q, std::int64_t seq_k) {
  return mask.block_layout(seq_q, seq_k, 64, 64).visible_pairs;
}

double useful_flop(Pass pass, std::int64_t pairs, const AttentionShape& shape) {
  return 4.0 * static_cast<double>(shape.batch) * static_cast<double>(shape.heads) * static_cast<double>(pairs) *
         static_cast<double>(shape.head_dim) * pass_factor(pass);
}

double model_flop(Pass pass, const Mask& mask, const AttentionShape& shape) {
  if (mask.kind() != Mask::Kind::none && mask.kind() != Mask::Kind::causal) {
    return useful_flop(pass, visible_pairs(mask, shape.seq_q, shape.seq_k), shape);
  }
  double forward = 4.0 * static_cast<double>(shape.batch) * static_cast<double>(shape.heads) *
                   static_cast<double>(shape.seq_q) * static_cast<double>(shape.seq_k) *
                   static_cast<double>(shape.head_dim);
  if (mask.kind() == Mask::Kind::causal) forward *= 0.5;
  return forward * pass_factor(pass);
}

std::int64_t case_visible_pairs(const AttentionCase& c) {
  if (!c.lengths_seed) return visible_pairs(c.mask, c.queries(), c.seq_len);
  std::int64_t pairs = 0;
  for (std::int64_t length : c.lengths()) pairs += length == 0 ? 0 : visible_pairs(c.mask, length, length);
  return pairs;
}

CaseFlop case_flop(const AttentionCase& c) {
  const AttentionShape shape = c.shape();
  const bool per_pair = c.lengths_seed.has_value() || (c.queries() != c.seq_len && c.mask.kind() != Mask::Kind::none);
  if (c.lengths_seed) {
    // Summed over the sequences: useful_flop with B = 1 counts H heads of the batch's pairs.
    AttentionShape one = shape;
    one.batch = 1;
    const double useful = useful_flop(c.pass, case_visible_pairs(c), one);
    return {useful, useful};
  }
  const double useful = useful_flop(c.pass, case_visible_pairs(c), shape);
  return {per_pair ? useful : model_flop(c.pass, c.mask, shape), useful};
}

std::int64_t query_tokens(const AttentionCase& c) {
  if (!c.lengths_seed) return c.batch * c.queries();
  std::int64_t tokens = 0;
  for (std::int64_t length : c.lengths()) tokens += length;
  return tokens;
}

double kv_bytes(const AttentionCase& c) {
  double keys = static_cast<double>(c.batch) * static_cast<double>(c.seq_len);
  if (c.lengths_seed) keys = static_cast<double>(query_tokens(c));  // seqlens_k = seqlens_q
  return 2.0 * static_cast<double>(c.kv_heads()) * static_cast<double>(c.head_dim) * sizeof(float) * keys;
}

std::int64_t estimated_bytes(const AttentionCase& c) {
  const double b = static_cast<double>(c.batch);
  const double h = static_cast<double>(c.heads);
  const double nq = static_cast<double>(c.queries());
  const double nk = static_cast<double>(c.seq_len);
  const double d = static_cast<double>(c.head_dim);
  const double q_tensor = b * h * nq * d * sizeof(float);                                     // (B, H, Nq, d)
  const double kv_tensor = b * static_cast<double>(c.kv_heads()) * nk * d * sizeof(float);   // (B, H_kv, Nk, d)
  const double rows = b * h * nq * sizeof(float);                                             // one float per query row
  const double scores = b * h * nq * nk * sizeof(float);                                      // B H Nq Nk float scores
  const bool backward = c.pass != Pass::forward;
  // Setup: q, out, dout, dq; k, v, dk, dv; the row stats {max, inv_sum} (and the LibTorch twins' gradients).
  double bytes = 4.0 * q_tensor + 4.0 * kv_tensor + 2.0 * rows;
  if (is_libtorch(c.contender)) {
    // B H N^2 float score tensors: forward makes Q K^T, the masked scores and their softmax
    // (measured peak 2.1-2.2 of them above the call's start at N = 1024). With autograd the
    // softmax output stays saved for backward, which adds dP, dS and temporaries (saved + peak
    // measured 3.1-3.2). 2.5 and 3.5 leave a margin. The mask: an (Nq, Nk) float additive mask
    // ((B, 1, N, N) for a variable-length batch), or for is_causal the bool and float masks SDPA
    // builds; plus outputs and gradients; K and V repeated to H heads for grouped-query heads (and
    // their gradients).
    const double masks = (c.lengths_seed ? b : 2.0) * nq * nk * sizeof(float);
    const double full_kv = b * h * nk * d * sizeof(float);
    bytes += (backward ? 3.5 : 2.5) * scores + masks + 2.0 * q_tensor + 2.0 * kv_tensor +
             (c.kv_heads() != c.heads ? (backward ? 4.0 : 2.0) * full_kv : 0.0);
  } else if (const AttentionImpl& impl = implementation_of(c.contender); impl.working_bytes) {
    // The implementation's own estimate (variants/builtin_impls.cpp for ours); a plugin's is not known.
    bytes += impl.working_bytes(c.shape(), sizeof(float), c.threads, backward);
  }
  // Past 2^62 bytes every budget skips the case; converting a larger double would overflow.
  return bytes < 0x1p62 ? static_cast<std::int64_t>(bytes) : std::int64_t{1} << 62;
}

std::optional<std::string> over_budget(std::int64_t estimated, double budget_gib) {
  const double gib = static_cast<double>(estimated) / (1024.0 * 1024.0 * 1024.0);
  if (gib <= budget_gib) return std::nullopt;
  char text[128];
  std::snprintf(text, sizeof text, "needs %.2f GiB > budget %.2f GiB", gib, budget_gib);
  return std::string(text);
}

BenchConfig profile_config(const std::string& profile) {
  BenchConfig config;
  config.profile = profile;
  config.passes = {Pass::forward, Pass::backward, Pass::forward_backward};
  if (profile == "quick") {
    config.contenders = all_contenders();
    config.feature_seq_lens = {256, 512};
    config.decode_queries = {1, 16};
    config.decode_keys = {1024, 4096};
    config.masks = {Mask::none(), Mask::causal()};
    config.seq_lens = {256, 512, 1024};
    config.head_dims = {64};
    config.repetitions = 3;
    config.min_time = 0.1;
    config.layer_tokens = {256};
    config.gemm_size = 1024;
  } else if (profile == "full") {
    config.contenders = all_contenders();
    config.feature_seq_lens = {1024, 2048, 4096};
    config.decode_queries = {1, 16};
    config.decode_keys = {1024, 2048, 4096, 8192, 16384, 32768, 65536};
    config.masks = {Mask::none(), Mask::causal(), sliding_window_256(), bigbird_64()};
    config.seq_lens = {256, 512, 1024, 2048, 4096, 8192, 16384};
    config.head_dims = {64, 128};
    config.repetitions = 3;
    config.min_time = 0.2;
    config.layer_tokens = {256, 1024};
    config.gemm_size = 2048;
  } else {
    fail("--profile expects quick|full, got '", profile, "'");
  }
  return config;
}

BenchConfig parse_options(int& argc, char** argv) {
  // Pass 1: collect ours from the environment, then the command line (which wins).
  std::map<std::string, std::string> values;
  for (const char* option : kOptionNames) {
    if (const char* value = std::getenv(env_name(option).c_str()); value != nullptr && *value != '\0') {
      values[option] = value;
    }
  }
  std::vector<std::string> plugins;  // --plugin, repeatable: in command-line order
  std::set<std::string> given;  // on the command line, where an option may appear once
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    bool ours = false;
    if (arg.starts_with("--") && !arg.starts_with("--benchmark_")) {
      std::string option = arg.substr(2);
      std::string value;
      const std::size_t equals = option.find('=');
      if (equals != std::string::npos) {
        value = option.substr(equals + 1);
        option.resize(equals);
      }
      if (std::find(std::begin(kOptionNames), std::end(kOptionNames), option) != std::end(kOptionNames)) {
        ours = true;
        const bool flag = std::find(std::begin(kFlagNames), std::end(kFlagNames), option) != std::end(kFlagNames);
        if (equals == std::string::npos && flag) {
          value = "on";
        } else if (equals == std::string::npos) {
          if (i + 1 >= argc) fail("--", option, " needs a value");
          value = argv[++i];
        }
        if (option == "plugin") {
          plugins.push_back(value);  // repeatable
        } else {
          if (!given.insert(option).second) fail("--", option, " is given more than once");
          values[option] = value;
        }
      } else if (option == "help") {
        fail("usage:\n", usage());
      } else {
        fail("unknown option '", arg, "' (Google Benchmark's own flags start with --benchmark_)\n", usage());
      }
    }
    if (!ours) argv[kept++] = argv[i];
  }
  argc = kept;
  argv[argc] = nullptr;
  if (plugins.empty() && values.contains("plugin")) plugins = split_paths(values["plugin"]);
  values.erase("plugin");
  load_plugins(plugins);  // before the profile: its default contenders include them
  BenchConfig config = profile_config(values.contains("profile") ? values["profile"] : "quick");
  config.plugins = plugins;
  for (const auto& [option, value] : values) {
    if (option != "profile") apply(config, option, value);
  }
  if (values.contains("heads-kv")) {
    if (config.heads_kv >= config.heads || config.heads % config.heads_kv != 0) {
      const bool features = std::any_of(config.cases.begin(), config.cases.end(), [](CaseKind k) {
        return k == CaseKind::grouped_query || k == CaseKind::decoding;
      });
      if (features) {
        fail("--heads-kv expects a divisor of --heads ", config.heads,
             " below it (the grouped-query and decoding cases), got ", config.heads_kv);
      }
    }
  } else {
    config.heads_kv = default_heads_kv(config.heads);
  }
  // An explicit block layout fixes N: the sweep applies every mask at every sequence length.
  for (const Mask& mask : config.masks) {
    for (std::int64_t n : config.seq_lens) {
      try {
        mask.validate("--masks", n, n);
      } catch (const std::invalid_argument& error) {
        fail(error.what(), " (at --seq-lens ", n, ")");
      }
    }
  }
  return config;
}

std::string usage() {
  std::string variants;
  for (const Contender& c : all_contenders()) variants += (variants.empty() ? "" : ",") + c.name;
  return "bench [--profile quick|full] [--threads N] [--memory-budget-gib G]\n"
         "      [--variants " + variants + "]\n"
         "      [--passes forward,backward,forward_backward] [--masks none,causal,'sliding_window(left=256,right=0)',...]\n"
         "      [--seq-lens 256,512,...] [--head-dims 64,128] [--batch B] [--heads H]\n"
         "      [--repetitions R] [--min-time S] [--iterations I] [--layers on|off] [--layer-tokens 256,1024]\n"
         "      [--gemm-size M] [--gemm on|off] [--dry-run on|off] [--plugin LIB.so]... [--plugin-timeout S]\n"
         "      [--allocator tuned|default] [--allocator-probe on|off]\n"
         "      [--cases plain,grouped_query,variable_length,decoding] [--heads-kv H_kv] [--feature-seq-lens 256,512]\n"
         "      [--decode-queries 1,16] [--decode-keys 1024,4096,...] [--copy-bytes BYTES]\n"
         "      [--shard I/N] [--list-cases]\n"
         "      [Google Benchmark's --benchmark_* flags]\n"
         "Each option may also be set as PED_BENCH_<OPTION> in the environment (e.g. PED_BENCH_PROFILE=full).\n";
}

namespace {

bool has_kind(const BenchConfig& config, CaseKind kind) {
  return std::find(config.cases.begin(), config.cases.end(), kind) != config.cases.end();
}

// The feature cases (bench_config.hpp's header comment), after the plain ones.
void add_feature_cases(const BenchConfig& config, std::vector<AttentionCase>& cases) {
  if (config.head_dims.empty()) return;
  const std::int64_t d = config.head_dims.front();
  std::vector<Pass> passes;  // forward and forward_backward, as far as --passes has them
  for (Pass p : config.passes) {
    if (p != Pass::backward) passes.push_back(p);
  }
  const auto add = [&](AttentionCase c) {
    if (runs(c)) cases.push_back(std::move(c));
  };
  const AttentionCase base{.mask = Mask::causal(), .batch = config.batch, .heads = config.heads, .head_dim = d,
                           .threads = config.threads};
  // H_kv 0 or H (one head: nothing to group): no grouped-query case, and decoding with H_kv = H only.
  const bool grouped = config.heads_kv > 0 && config.heads_kv < config.heads && config.heads % config.heads_kv == 0;
  if (has_kind(config, CaseKind::grouped_query) && grouped) {
    for (Pass pass : passes) {
      for (const Contender& contender : config.contenders) {
        for (std::int64_t n : config.feature_seq_lens) {
          AttentionCase c = base;
          c.contender = contender;
          c.pass = pass;
          c.seq_len = n;
          c.heads_kv = config.heads_kv;
          add(c);
        }
      }
    }
  }
  if (has_kind(config, CaseKind::variable_length)) {
    for (Pass pass : passes) {
      for (const Contender& contender : config.contenders) {
        for (std::int64_t n : config.feature_seq_lens) {
          AttentionCase c = base;
          c.contender = contender;
          c.pass = pass;
          c.batch = kVarlenBatch;
          c.seq_len = n;
          c.lengths_seed = kLengthsSeed;
          add(c);
        }
      }
    }
  }
  const bool forward = std::find(passes.begin(), passes.end(), Pass::forward) != passes.end();
  if (has_kind(config, CaseKind::decoding) && forward) {
    std::vector<std::int64_t> kv_heads = {config.heads};
    if (grouped) kv_heads.push_back(config.heads_kv);
    for (std::int64_t h_kv : kv_heads) {
      for (std::int64_t nq : config.decode_queries) {
        for (const Contender& contender : config.contenders) {
          // LibTorch's SDPA is the decoding baseline; its other formulations add nothing here.
          if (is_libtorch(contender) && contender != Contender::libtorch_sdpa) continue;
          for (std::int64_t nk : config.decode_keys) {
            AttentionCase c = base;
            c.contender = contender;
            c.pass = Pass::forward;
            c.batch = 1;
            c.heads_kv = h_kv;
            c.seq_len = nk;
            c.seq_q = nq;
            add(c);
          }
        }
      }
    }
  }
}

}  // namespace

std::vector<AttentionCase> attention_cases(const BenchConfig& config) {
  const LibTorchContender* probe = nullptr;
  for (const LibTorchContender& t : libtorch_contenders()) {
    if (t.glibc_default_probe) probe = &t;
  }
  std::vector<AttentionCase> cases;
  for (std::int64_t d : has_kind(config, CaseKind::plain) ? config.head_dims : std::vector<std::int64_t>{}) {
    for (const Mask& mask : config.masks) {
      for (Pass pass : config.passes) {
        // The probe's subset: see BenchConfig::allocator_probe.
        const bool probed = config.allocator == AllocatorSetting::tuned && config.allocator_probe && probe != nullptr &&
                            d == config.head_dims.front() && pass != Pass::backward &&
                            (mask.kind() == Mask::Kind::none || mask.kind() == Mask::Kind::causal);
        for (const Contender& contender : config.contenders) {
          if (!runs(contender, pass, mask)) continue;
          std::vector<Contender> runs_as = {contender};
          if (probed && contender == Contender::libtorch_sdpa) runs_as.push_back(probe->contender);
          for (const Contender& run : runs_as) {
            for (std::int64_t n : config.seq_lens) {
              cases.push_back({.contender = run, .pass = pass, .mask = mask, .batch = config.batch,
                               .heads = config.heads, .seq_len = n, .head_dim = d, .threads = config.threads});
            }
          }
        }
      }
    }
  }
  add_feature_cases(config, cases);
  return cases;
}

std::string layer_benchmark_name(const char* op, const char* impl, const LayerSizes& s, std::int64_t n, int threads,
                                 const char* sizes) {
  std::ostringstream os;
  os << "layer/" << op << "/" << impl << "/forward_backward/float/D:" << s.model_dim << "/N:" << n;
  for (const char* p = sizes; *p != '\0'; ++p) {
    if (*p == 'H') os << "/H:" << s.heads;
    if (*p == 'F') os << "/F:" << s.ffn_dim;
    if (*p == 'V') os << "/V:" << s.vocab;
  }
  os << "/T:" << threads;
  return os.str();
}

double layer_flop(const std::string& op, const LayerSizes& s, std::int64_t n) {
  const double t = static_cast<double>(n), d = static_cast<double>(s.model_dim), f = static_cast<double>(s.ffn_dim),
               v = static_cast<double>(s.vocab);
  if (op == "linear") return 3.0 * 2.0 * t * d * f;
  if (op == "layer_norm") return 20.0 * t * d;
  if (op == "gelu") return 30.0 * t * f;
  if (op == "feed_forward") return 3.0 * 2.0 * (2.0 * t * d * f);
  // four D x D projections (forward 8 n D^2, x3 with backward) + causal scores and values (4 n^2 D / 2, x3.5)
  if (op == "attention") return 3.0 * 8.0 * t * d * d + 3.5 * 0.5 * 4.0 * t * t * d;
  if (op == "cross_entropy") return 10.0 * t * v;
  throw std::invalid_argument("layer_flop: unknown layer '" + op + "'");
}

namespace {

std::string setting_number(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

}  // namespace

std::string describe_settings(const BenchConfig& config) {
  std::ostringstream os;
  os << "repetitions=" << config.repetitions << ";min_time=" << setting_number(config.min_time)
     << ";iterations=" << config.iterations << ";memory_budget_gib=" << setting_number(config.memory_budget_gib)
     << ";allocator=" << to_string(config.allocator) << ";allocator_probe=" << (config.allocator_probe ? "on" : "off")
     << ";gemm_size=" << config.gemm_size << ";copy_bytes=" << config.copy_bytes;
  const LayerSizes& l = config.layer_sizes;
  os << ";layer_sizes=D:" << l.model_dim << "/N:" << l.tokens << "/H:" << l.heads << "/F:" << l.ffn_dim
     << "/V:" << l.vocab;
  os << ";plugins=";
  for (std::size_t i = 0; i < config.plugins.size(); ++i) {
    os << (i > 0 ? "," : "") << std::filesystem::path(config.plugins[i]).filename().string();
  }
  os << ";plugin_timeout=" << setting_number(config.plugin_timeout);
  for (const char* variable : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_PROC_BIND"}) {
    const char* value = std::getenv(variable);
    os << ";" << variable << "=" << (value != nullptr ? value : "(unset)");
  }
  // One line: a control character (from the environment) would break the manifest.
  std::string line = os.str();
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return line;
}

std::uint64_t timed_cost_us(double call_s, double setup_s, int extra_calls, const BenchConfig& config) {
  using namespace cost_model;
  const double invocation_s = kInvocationOverheadUs * 1e-6 + setup_s;
  double total = 0.0;
  double iterations = 1.0;
  if (config.iterations > 0) {
    iterations = static_cast<double>(config.iterations);
    total += invocation_s + iterations * call_s;
  } else {
    // Google Benchmark 1.7's search for the iteration count (BenchmarkRunner::PredictNumItersNeeded).
    constexpr double kMaxIterations = 1e9;
    for (;;) {
      const double seconds = iterations * call_s;
      total += invocation_s + seconds;
      if (seconds >= config.min_time || iterations >= kMaxIterations) break;
      const bool significant = seconds / config.min_time > 0.1;
      const double multiplier = significant ? config.min_time * 1.4 / std::max(seconds, 1e-9) : 10.0;
      iterations = std::min(kMaxIterations, std::round(std::max(multiplier * iterations, iterations + 1.0)));
    }
  }
  const double later = static_cast<double>(config.repetitions - 1);
  total += later * (invocation_s + iterations * call_s);
  total += invocation_s + call_s;                  // the memory run of the first repetition
  total += later * kInvocationOverheadUs * 1e-6;   // the later ones' (setup and call skipped)
  total += extra_calls * call_s;
  const double us = std::ceil(total * 1e6);
  return us < 1.0 ? 1 : us > 1e18 ? std::uint64_t{1'000'000'000'000'000'000} : static_cast<std::uint64_t>(us);
}

std::uint64_t attention_case_cost(const AttentionCase& c, const BenchConfig& config) {
  using namespace cost_model;
  if (over_budget(estimated_bytes(c), config.memory_budget_gib)) {
    return static_cast<std::uint64_t>(std::ceil(2.0 * config.repetitions * kInvocationOverheadUs));
  }
  const double threads = c.threads;
  const bool libtorch = is_libtorch(c.contender);
  // Our kernels' and plugins' time per FLOP from the registry (AttentionImpl::relative_cost).
  const double slowdown = libtorch ? kLibTorchSlowdown : implementation_of(c.contender).relative_cost;
  const double b = static_cast<double>(c.batch), h = static_cast<double>(c.heads), d = static_cast<double>(c.head_dim);
  const double q_bytes = b * h * static_cast<double>(c.queries()) * d * sizeof(float);
  const double kv_tensor = b * static_cast<double>(c.kv_heads()) * static_cast<double>(c.seq_len) * d * sizeof(float);
  const bool backward = c.pass != Pass::forward;
  const double streamed = (2.0 * q_bytes + kv_bytes(c)) * (backward ? 3.0 : 1.0);
  const double overhead_s = kCallOverheadUs * 1e-6 * (libtorch ? 10.0 : 1.0);
  const auto call_of = [&](Pass pass) {
    AttentionCase p = c;
    p.pass = pass;
    const double flop = libtorch ? model_flop(pass, Mask::none(), c.shape()) : case_flop(p).model;
    return flop / (kGflopsPerThread * 1e9 * threads / slowdown) +
           streamed / (kGbpsPerThread * 1e9 * threads) + overhead_s;
  };
  const double call_s = call_of(c.pass);
  // Setup: q, out, dout, dq and k, v, dk, dv allocated, q, k, v, dout filled; a backward's forward.
  double setup_s = (4.0 * q_bytes + 4.0 * kv_tensor) / (kFillGbps * 1e9);
  if (c.pass == Pass::backward) setup_s += call_of(Pass::forward);
  const int extra = !libtorch && implementation_of(c.contender).times_phases ? 1 : 0;  // the phase-timing call
  return timed_cost_us(call_s, setup_s, extra, config);
}

std::uint64_t layer_case_cost(const std::string& op, bool libtorch, std::int64_t tokens, const BenchConfig& config) {
  using namespace cost_model;
  const LayerSizes& s = config.layer_sizes;
  const double n = static_cast<double>(tokens), d = static_cast<double>(s.model_dim), f = static_cast<double>(s.ffn_dim),
               v = static_cast<double>(s.vocab);
  // The floats of each benchmark's inputs (layer_benchmarks.cpp and its LibTorch twins alike).
  double inputs = 0.0;
  if (op == "linear") inputs = d * n + f * d + f * n + f;
  if (op == "layer_norm") inputs = 2.0 * d * n + 2.0 * d;
  if (op == "gelu") inputs = 2.0 * f * n;
  if (op == "feed_forward") inputs = 2.0 * f * d + f + d + 2.0 * d * n;
  if (op == "attention") inputs = 4.0 * d * d + 4.0 * d + 2.0 * d * n;
  if (op == "cross_entropy") inputs = v * n;
  const double threads = config.threads;
  const double call_s = layer_flop(op, s, tokens) / (kGflopsPerThread * kGemmSpeedup * 1e9 * threads) +
                        3.0 * inputs * sizeof(float) / (kGbpsPerThread * 1e9 * threads) +
                        kCallOverheadUs * 1e-6 * 10.0 * (libtorch ? 2.0 : 1.0);
  return timed_cost_us(call_s, inputs * sizeof(float) / (kFillGbps * 1e9), 0, config);
}

std::uint64_t gemm_case_cost(const BenchConfig& config) {
  using namespace cost_model;
  const double n = static_cast<double>(config.gemm_size);
  const double call_s = 2.0 * n * n * n / (kGflopsPerThread * kGemmSpeedup * 1e9 * config.threads) +
                        3.0 * n * n * sizeof(float) / (kGbpsPerThread * 1e9 * config.threads) + kCallOverheadUs * 1e-6;
  return timed_cost_us(call_s, 2.0 * n * n * sizeof(float) / (kFillGbps * 1e9), 0, config);
}

}  // namespace ped::bench
