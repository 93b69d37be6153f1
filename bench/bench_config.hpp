// The benchmark sweep: profiles, command-line options, names, the FLOP model and memory estimates.
//
// B batch, H heads, H_kv key/value heads, N tokens (Nq = Nk = N unless decoding), d head dim,
// T threads.
// Benchmark names follow the scheme reports/ parses (reports/gbench_json.hpp):
//   attention/<variant>/<pass>/<dtype>/<mask>/B:<b>/H:<h>[/Hkv:<h_kv>][/Nq:<nq>]/N:<n>/d:<d>[/L:<lengths>]/T:<t>
// (Hkv only for grouped-query cases, Nq only for decoding cases, whose N is Nk, L only for a
// variable-length batch: the lengths profile, e.g. L:mixed(seed=20250101)).
//
// The cases of a sweep (BenchConfig::cases; attention_cases builds the list):
//   plain            the masks x N x head dims x passes of the profile, H_kv = H, whole sequences
//   grouped_query    H query heads over H_kv = --heads-kv key/value heads, causal, forward and
//                    forward_backward, N of --feature-seq-lens
//   variable_length  a batch of kVarlenBatch sequences of mixed lengths (mixed_lengths: one of N
//                    tokens, the others drawn from kLengthsSeed), causal, forward and forward_backward,
//                    N of --feature-seq-lens; the padded (B, H, N, d) layout with
//                    AttentionFeatures::seqlens_q = seqlens_k = the lengths
//   decoding         B = 1, Nq of --decode-queries new tokens against Nk of --decode-keys cached keys,
//                    H_kv = H and H_kv = --heads-kv, causal (bottom-right: the queries are the last Nq
//                    positions), forward only; every implementation with a forward and libtorch_sdpa
// The implementations of a feature case are those of --variants whose AttentionImpl::features hold
// what the case uses (grouped_query, variable_length); LibTorch's formulations are in
// libtorch_benchmarks.cpp: K and V repeated to H heads (repeat_interleave) for grouped-query heads,
// an additive (B, 1, N, N) mask over the padded batch for variable lengths.
//   layer/<op>/<impl>/forward_backward/<dtype>/D:<D>/N:<N>/...   (reference vs LibTorch layers)
//   gemm/sgemm/float/M:<m>/N:<n>/K:<k>/T:<t>                       (the in-run ceiling)
#pragma once

#include "bench/allocator.hpp"
#include "variants/attention.hpp"
#include "core/mask.hpp"
#include "core/shard.hpp"
#include "plugin_host/child_process.hpp"
#include "variants/registry.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ped::bench {

// An attention contender, by name: a float implementation of the registry (variants/registry.hpp:
// our kernels and any plugin loaded with --plugin) or a LibTorch baseline (libtorch_contenders()).
struct Contender {
  std::string name;
  static const Contender libtorch_sdpa;      // at::_scaled_dot_product_attention
  static const Contender libtorch_composed;  // matmul, softmax, matmul with autograd
  friend bool operator==(const Contender&, const Contender&) = default;
};
inline const Contender Contender::libtorch_sdpa{"libtorch_sdpa"};
inline const Contender Contender::libtorch_composed{"libtorch_composed"};

// How a LibTorch contender computes softmax(s Q K^T + M) V (libtorch_benchmarks.cpp), each with
// autograd for the backward pass.
enum class LibTorchFormulation : std::uint8_t {
  sdpa,      // at::_scaled_dot_product_attention (LibTorch 1.13's math path), is_causal for causal
  composed,  // at::matmul on (B, H, N, d), * s, + M, softmax, at::matmul
  addmm,     // per (b, h): at::addmm(M, Q_bh, K_bh^T, 1, s) (at::mm(s Q_bh, K_bh^T) without a
             // mask), softmax, at::mm with V_bh; outputs stacked
};
struct LibTorchContender {
  Contender contender;
  LibTorchFormulation formulation;
  // The in-run allocator probe (allocator.hpp): runs under glibc's default malloc behaviour, only in
  // a tuned run, only where attention_cases puts it; not a --variants name.
  bool glibc_default_probe = false;
};
// Every LibTorch contender, the one list the rest of bench iterates: the baselines in run order,
// then the probe (libtorch_sdpa under glibc's default, named libtorch_sdpa + schema's suffix).
const std::vector<LibTorchContender>& libtorch_contenders();
// Its entry, or nullptr for a contender that is not LibTorch's.
const LibTorchContender* libtorch_contender(const Contender& c);
enum class Pass : std::uint8_t { forward, backward, forward_backward };

const char* to_string(const Contender& c);  // its name
const char* to_string(Pass p);
std::optional<Contender> parse_contender(const std::string& text);
std::optional<Pass> parse_pass(const std::string& text);
// A comma-separated list of masks in Mask::parse's syntax (commas inside a mask's parentheses
// belong to it), e.g. "causal,sliding_window(left=256,right=0)". Throws std::invalid_argument
// naming --`option` on an empty list or item, or a text Mask::parse refuses.
std::vector<Mask> parse_masks(const std::string& option, const std::string& text);
bool is_libtorch(const Contender& c);
// The registry's implementation c names; throws std::invalid_argument for a LibTorch contender or
// an unknown name.
const AttentionImpl& implementation_of(const Contender& c);
// Every contender of the registry that runs in float, in registration order (plugins loaded by now
// included), then the LibTorch baselines (libtorch_contenders() without the probe).
std::vector<Contender> all_contenders();
// Whether c runs `pass` under mask m: the implementation takes the mask's kind and, for a pass
// with a backward, has a float backward (always true for LibTorch).
bool runs(const Contender& c, Pass pass, const Mask& m);

// The full profile's masks besides none and causal: a causal window of 256 keys back (keys
// i-256 ... i) and BigBird in 64-token blocks.
inline constexpr std::uint64_t kBigbirdSeed = 20250101;
inline Mask sliding_window_256() { return Mask::sliding_window(256, 0); }
inline Mask bigbird_64() { return Mask::bigbird(64, 1, 1, 1, kBigbirdSeed); }

// The variable-length case: its batch, the seed of its lengths, and the lengths themselves.
inline constexpr std::int64_t kVarlenBatch = 4;
inline constexpr std::uint64_t kLengthsSeed = 20250101;
// "mixed(seed=<seed>)": the lengths profile's name in benchmark names and the CSV's lengths column.
std::string mixed_lengths_profile(std::uint64_t seed);
// `batch` lengths for padded length n: the first n (so the padded batch is no longer than its longest
// sequence), each other one drawn uniformly from [max(1, n / 8), n] by a splitmix64 stream of
// `seed` (the same lengths on every machine). Throws std::invalid_argument naming the function for
// batch or n < 1.
std::vector<std::int64_t> mixed_lengths(std::uint64_t seed, std::int64_t batch, std::int64_t n);

// The grouped-query cases' H_kv when --heads-kv is not given: H / 4 where 4 divides H (8 -> 2),
// else 1 (multi-query) for H > 1, else 0 (a single head has nothing to group).
std::int64_t default_heads_kv(std::int64_t heads);

enum class CaseKind : std::uint8_t { plain, grouped_query, variable_length, decoding };
const char* to_string(CaseKind kind);  // "plain", "grouped_query", "variable_length", "decoding"
std::optional<CaseKind> parse_case_kind(const std::string& text);

struct AttentionCase {
  Contender contender{"flash"};
  Pass pass = Pass::forward;
  Mask mask = Mask::causal();
  std::int64_t batch = 1;     // B
  std::int64_t heads = 8;     // H
  std::int64_t seq_len = 1024;  // N: Nk, and Nq unless seq_q is set
  std::int64_t head_dim = 64;   // d
  int threads = 2;              // T
  std::int64_t heads_kv = 0;    // H_kv; 0: H (plain multi-head attention)
  std::int64_t seq_q = 0;       // Nq; 0: N (decoding: Nq new queries against N keys)
  std::optional<std::uint64_t> lengths_seed;  // a variable-length batch: mixed_lengths(seed, B, N)

  AttentionShape shape() const {
    return {.batch = batch, .heads = heads, .seq_q = queries(), .seq_k = seq_len, .head_dim = head_dim,
            .heads_kv = heads_kv == heads ? 0 : heads_kv};
  }
  std::int64_t queries() const { return seq_q == 0 ? seq_len : seq_q; }
  std::int64_t kv_heads() const { return heads_kv == 0 ? heads : heads_kv; }
  // The per-sequence lengths (B of them), empty for whole sequences.
  std::vector<std::int64_t> lengths() const;
  // mixed_lengths_profile(seed), or "" for whole sequences.
  std::string lengths_profile() const;
  // The AttentionFeature bits the case uses (grouped_query, variable_length).
  std::uint32_t features() const;
  // attention/<variant>/<pass>/float/<mask>/B:<b>/H:<h>[/Hkv:..][/Nq:..]/N:<n>/d:<d>[/L:..]/T:<t>,
  // <mask> its Mask::name(); Hkv, Nq and L only where they differ from H, N and whole sequences.
  std::string name() const;
};

// Whether the case's contender runs it: runs() above, and the implementation declares every feature
// the case uses (AttentionImpl::features; always true for LibTorch).
bool runs(const AttentionCase& c);

// FLOP per call. The FlashAttention benchmark model: forward 4 B H Nq Nk d, halved for a causal
// mask, backward 2.5x forward, forward_backward 3.5x forward. For masks the model does not cover
// (sliding window, BigBird) the model value is the useful count below, so that GFLOP/s compares
// like with like across contenders of one mask.
double model_flop(Pass pass, const Mask& mask, const AttentionShape& shape);
// The FLOP of a case: {model, useful}. H counts query heads (grouped-query heads do the FLOP of
// H heads); a variable-length batch counts the visible pairs within each sequence only (no
// padding) for both, as does a causal decoding case (bottom-right causal with Nq < Nk is not half
// of Nq Nk); otherwise model_flop and useful_flop above.
struct CaseFlop {
  double model = 0;
  double useful = 0;
};
CaseFlop case_flop(const AttentionCase& c);
// Visible (query, key) pairs of one head, summed over the batch's sequences for a variable-length
// batch, of one (b, h) slice otherwise (visible_pairs below).
std::int64_t case_visible_pairs(const AttentionCase& c);
// Real query tokens of one call: the sum of the lengths, or B Nq.
std::int64_t query_tokens(const AttentionCase& c);
// Bytes of K and V one forward reads, each element once: 2 H_kv d sizeof(float) x (the sum of the
// lengths, or B Nk). The decoding cases' bandwidth is this over the time.
double kv_bytes(const AttentionCase& c);
// Useful FLOP: the same per-pair cost, 4 d per visible (query, key) pair forward, times the
// exact number of visible pairs (Mask::block_layout's visible_pairs) and B H; backward 2.5x,
// forward_backward 3.5x.
double useful_flop(Pass pass, std::int64_t visible_pairs, const AttentionShape& shape);
std::int64_t visible_pairs(const Mask& mask, std::int64_t seq_q, std::int64_t seq_k);

// Estimated peak heap bytes of a benchmark: inputs, outputs and gradients it allocates in setup
// plus the contender's working memory (naive: the (Nq, Nk) probabilities of one (b, h) in double,
// and dS too in backward; LibTorch: B H Nq Nk float scores materialised several times, plus the
// autograd graph's saved tensors). Deliberately on the high side: it decides what to skip.
std::int64_t estimated_bytes(const AttentionCase& c);

// "needs X GiB > budget Y GiB" when the estimate exceeds the budget, nullopt otherwise.
std::optional<std::string> over_budget(std::int64_t estimated, double budget_gib);

struct LayerSizes {
  std::int64_t model_dim = 768;  // D
  std::int64_t tokens = 256;     // N
  std::int64_t heads = 12;       // H
  std::int64_t ffn_dim = 3072;   // F
  std::int64_t vocab = 50257;    // V
};

// "layer/<op>/<impl>/forward_backward/float/D:<D>/N:<n>[/H:..][/F:..][/V:..]/T:<threads>", the sizes
// named by the letters of `sizes` (e.g. "HF"); impl is "reference" or "libtorch".
std::string layer_benchmark_name(const char* op, const char* impl, const LayerSizes& s, std::int64_t n, int threads,
                                 const char* sizes);

// FLOP of one forward+backward of a reference layer at n tokens ("linear", "layer_norm", "gelu",
// "feed_forward", "attention", "cross_entropy"); matrix products count 2 per multiply-add and a
// backward twice its forward; attention is causal, its score products counted by FlashAttention's
// model (halved, forward+backward 3.5x forward). Throws std::invalid_argument for another op.
double layer_flop(const std::string& op, const LayerSizes& s, std::int64_t n);

struct BenchConfig {
  std::string profile = "quick";
  int threads = 2;
  double memory_budget_gib = 8.0;
  std::vector<Contender> contenders;
  std::vector<Pass> passes;
  std::vector<Mask> masks;
  std::vector<std::int64_t> seq_lens;
  std::vector<std::int64_t> head_dims;
  std::int64_t batch = 1;
  std::int64_t heads = 8;
  int repetitions = 3;
  double min_time = 0.1;                  // seconds per repetition (Google Benchmark's min_time)
  std::int64_t iterations = 0;            // fixed iterations per repetition; 0 = by min_time
  bool layers = true;                     // the per-layer benchmarks
  std::vector<std::int64_t> layer_tokens;  // N of the layer benchmarks
  LayerSizes layer_sizes;
  std::int64_t gemm_size = 2048;          // M = N = K of the SGEMM ceiling
  bool gemm = true;                       // the gemm/ benchmark (the ceiling is measured regardless)
  bool dry_run = false;                   // list the attention cases, estimates and skips; run nothing
  std::vector<std::string> plugins;       // --plugin libraries, loaded into the registry as contenders
  // Seconds each trial run of a plugin may take in its child process (plugin_trial.hpp); past it the
  // contender's benchmarks are skipped (300 s: plugin_host/child_process.hpp says why).
  double plugin_timeout = static_cast<double>(plugin::kDefaultPluginTimeLimit.count()) / 1000;
  AllocatorSetting allocator = AllocatorSetting::tuned;  // allocator.hpp, applied at start to every contender
  // In a tuned run, libtorch_sdpa also runs under glibc's default (the probe contender) at the
  // sweep's N, first head dim, masks none and causal, passes forward and forward_backward.
  bool allocator_probe = true;
  // The kinds of cases of the sweep (the header comment above), and their sizes.
  std::vector<CaseKind> cases = {CaseKind::plain, CaseKind::grouped_query, CaseKind::variable_length,
                                 CaseKind::decoding};
  // H_kv of the grouped-query and decoding cases: --heads-kv, else default_heads_kv(heads) (2 for
  // the default 8 heads); 0: none (one head), no grouped-query case.
  std::int64_t heads_kv = 2;
  std::vector<std::int64_t> feature_seq_lens;   // N of the grouped-query and variable-length cases
  std::vector<std::int64_t> decode_queries;     // Nq of the decoding cases
  std::vector<std::int64_t> decode_keys;        // Nk of the decoding cases
  // Bytes of the in-run copy bandwidth ceiling's source buffer (bandwidth_ceiling.hpp); 0: its default.
  std::int64_t copy_bytes = 0;
  // --shard I/N: the part of the sweep this process runs (core/shard.hpp); 0/1 = all of it.
  ShardSpec shard;
  bool list_cases = false;  // print the sweep's cases with their shard and cost; run nothing
};

// One line of every setting that changes the measurements but not the case list (the names carry
// variant, pass, mask and sizes): repetitions, min_time, iterations, memory budget, allocator and
// its probe, SGEMM size, copy bytes, layer sizes, the plugins' file names (not their directories)
// and trial time limit, and OpenMP's waiting policy as the environment has it now (OMP_WAIT_POLICY,
// GOMP_SPINCOUNT, OMP_PROC_BIND). "key=value" items separated by ';', in a fixed order. The shard
// manifest's settings field: report merge refuses shards whose settings differ.
std::string describe_settings(const BenchConfig& config);

// The cost model of sharded runs (--shard, --list-cases): each benchmark's estimated wall time in
// Google Benchmark, in microseconds on a nominal machine of config.threads cores, from which
// core/shard.hpp balances the shards. Only the ratios between cases matter for the balance; the
// totals are an order-of-magnitude guide. It depends on the configuration alone (never on this
// machine's measured ceilings or a plugin's trial), so every shard of a sweep computes the same
// costs and so the same partition.
//
// One call of a benchmark: flop / (kGflopsPerThread x T / slowdown) + bytes / (kGbpsPerThread x T)
// + a per-call overhead. flop: case_flop's model count for our attention kernels, the dense count
// (mask none: every (query, key) pair of the padded batch) for LibTorch's, which computes every
// score whatever the mask; layer_flop for the layers; 2 M N K for the SGEMM. slowdown:
// the registry's AttentionImpl::relative_cost for our kernels and plugins (naive 10, the others 1),
// kLibTorchSlowdown for the LibTorch contenders, 1 / kGemmSpeedup for the SGEMM and the layers (BLAS
// products). bytes: what one call streams (attention: Q, O and K, V, x3 with a backward; layers: their inputs x3), which is what
// bounds decoding. The setup of each run of the benchmark function: its inputs filled at kFillGbps
// (one thread), and for a backward pass the forward of the setup.
// The nominal rates are those of one AMD EPYC core (AVX-512) at N = 1024, d = 64 for our
// kernels (flash, blocked, sparse reach 19-24 GFLOP/s per thread there), measured against which naive
// is about 10x slower, LibTorch 1.13 1-2x, and OpenBLAS's SGEMM and the layers about 2x faster.
// Google Benchmark's behaviour around it (timed_cost_us): with --iterations I each repetition runs
// the function once with I iterations; otherwise the first repetition runs it with 1 iteration,
// then 10x more (or min_time x 1.4 / the time so far, once that time is 10 % of min_time) until the
// iterations take min_time, and every later repetition runs the function once with the count found.
// After each repetition the MemoryManager's run: one more call (and setup) in the first, nothing in
// later ones (harness.hpp: register_timed). Implementations that time their phases add one call.
// Every run of the function costs kInvocationOverheadUs. A case over the memory budget is skipped
// without setup: its repetitions' overheads only.
namespace cost_model {
inline constexpr double kGflopsPerThread = 20.0;    // our tiled kernels
inline constexpr double kLibTorchSlowdown = 1.5;    // LibTorch 1.13's CPU attention and autograd, on dense scores
inline constexpr double kGemmSpeedup = 2.0;         // OpenBLAS SGEMM and the layers' products
inline constexpr double kGbpsPerThread = 4.0;       // bytes a call streams, per thread
inline constexpr double kFillGbps = 1.0;            // setup: fill_uniform of the inputs
inline constexpr double kCallOverheadUs = 20.0;     // per call of our kernels; LibTorch and layers x10
inline constexpr double kInvocationOverheadUs = 200.0;  // per run of a benchmark function
}  // namespace cost_model

// The estimated wall time, in us (at least 1), of a benchmark whose one call takes `call_s`
// seconds after a setup of `setup_s` seconds, with `extra_calls` calls outside the repetitions
// (phase timing), under the repetitions, min_time and iterations of `config` (see above).
std::uint64_t timed_cost_us(double call_s, double setup_s, int extra_calls, const BenchConfig& config);
// The estimated cost of each kind of benchmark.
std::uint64_t attention_case_cost(const AttentionCase& c, const BenchConfig& config);
// op as layer_flop's; libtorch: the LibTorch twin rather than the reference layer.
std::uint64_t layer_case_cost(const std::string& op, bool libtorch, std::int64_t tokens, const BenchConfig& config);
std::uint64_t gemm_case_cost(const BenchConfig& config);

// The profile's defaults: "quick" or "full". Throws std::invalid_argument for another name.
BenchConfig profile_config(const std::string& profile);

// Reads our own options out of argv (removing them, leaving Google Benchmark's --benchmark_* flags
// and anything else for benchmark::Initialize), over the defaults of --profile. Every option may
// also come from the environment as PED_BENCH_<NAME> (upper case, '-' as '_'), e.g.
// PED_BENCH_PROFILE=full; the command line wins. Throws std::invalid_argument naming the option and
// what it expects on a bad value: a number out of its range, not a whole number, NaN or infinite, an
// empty list or list item ("1,,2"), an unknown name, or an option given twice on the command line.
//   --profile quick|full  --threads N [1, 1024]  --memory-budget-gib G (0, 2^20]  --variants a,b
//   --passes a,b  --masks a,b (Mask::parse texts; every mask must apply to every --seq-lens)  --seq-lens 256,512 [1, 131072]  --head-dims 64,128 [1, 1024]
//   --batch B [1, 65536]  --heads H [1, 65536]  --repetitions R [1, 100000]  --min-time S (0, 86400]
//   --iterations I [1, 10^12]  --layers on|off  --layer-tokens 256,1024 [1, 131072]
//   --gemm-size M [1, 46340]  --gemm on|off  --dry-run on|off
//   --plugin LIB.so (repeatable; PED_BENCH_PLUGIN: paths separated by ':')  --plugin-timeout S (0, 86400]
//   --allocator tuned|default  --allocator-probe on|off
//   --cases plain,grouped_query,variable_length,decoding  --heads-kv H_kv [1, 65536], dividing --heads
//   and below it (default: default_heads_kv(--heads))  --feature-seq-lens 256,512 [1, 131072]  --decode-queries 1,16 [1, 4096]
//   --decode-keys 1024,... [1, 1048576]  --copy-bytes BYTES [1, 2^34] (the copy ceiling's buffer;
//   default default_copy_bytes() of bandwidth_ceiling.hpp)
//   --shard I/N (ped::parse_shard's message on a bad value)  --list-cases (a flag: no value on the
//   command line, or --list-cases=on|off; PED_BENCH_LIST_CASES=on|off)
// A plugin is loaded (plugin_host/plugin_loader.hpp) before the other options are read, so that
// --variants may name it; without --variants it joins the profile's contenders.
BenchConfig parse_options(int& argc, char** argv);
std::string usage();

// Every attention case of the sweep, in run order (a contender's passes and masks it does not run left
// out), each libtorch_sdpa case the allocator probe covers followed by the probe's.
std::vector<AttentionCase> attention_cases(const BenchConfig& config);

}  // namespace ped::bench
