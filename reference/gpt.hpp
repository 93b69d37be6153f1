// The tiny GPT of the paper, assembled from the reference layers: token + positional embedding,
// L pre-LN transformer blocks (causal multi-head attention, GELU feed-forward, residuals), a final
// layer norm and an output head tied to the token embedding (GPT-2), mean cross-entropy over a batch.
//
// Column-major, as every reference layer: one token is one column.
// V vocabulary, T context (positional table length), D width, H heads, dh = D / H, L layers,
// F feed-forward width, r LoRA rank, B sequences per batch, N tokens per sequence (N <= T).
// A batch is B sequences of N tokens concatenated: activations are (D, B*N), sequence b owns columns
// b*N .. b*N + N - 1, and attention never crosses sequences.
//
// Parameters live in one flat buffer with named non-owning Armadillo views over it (GptTensors), and
// gradients and optimizer moments in buffers of the same layout, so an optimizer step and a
// checkpoint are single loops. With LoRA (rank r > 0) every base parameter is frozen and only the
// adapters A (r, I) and B (O, r) of the chosen projections train (Hu et al. 2021).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "reference/common.hpp"
#include "reference/cross_entropy.hpp"
#include "reference/gelu.hpp"
#include "reference/layer_norm.hpp"
#include "reference/lora_linear.hpp"
#include "variants/attention.hpp"
#include "variants/registry.hpp"

namespace ped::ref {

// Projections LoRA may adapt (a bit set): q, k, v, o of attention and both mlp layers.
enum LoraTarget : unsigned { lora_q = 1u, lora_k = 2u, lora_v = 4u, lora_o = 8u, lora_mlp = 16u };
// "q,v" -> lora_q | lora_v; "" or "none" -> 0. Throws std::invalid_argument on an unknown name.
unsigned parse_lora_targets(const std::string& text);
std::string lora_targets_string(unsigned targets);  // "q,v"

// Where attention's softmax(s Q^T K + M) V runs: "reference", the per-head plain-matrix path built from
// the reference softmax, or the name of an attention implementation of the registry
// (variants/registry.hpp: naive, blocked, flash, sparse, ...) with a backward in float and double.
inline constexpr const char* kReferenceAttention = "reference";
// `name` when it is "reference" or such an implementation; throws std::invalid_argument naming it
// and listing the accepted names.
std::string parse_gpt_attention(const std::string& name);
// Every accepted name: "reference", then the registry's implementations with both backwards.
std::vector<std::string> gpt_attention_names();

struct GptConfig {
  arma::uword vocab = 65;    // V
  arma::uword context = 64;  // T, longest sequence
  arma::uword width = 64;    // D
  arma::uword heads = 4;     // H, divides D
  arma::uword layers = 2;    // L
  arma::uword ffn = 256;     // F
  arma::uword lora_rank = 0;  // r; 0 = no adapters, every parameter trains
  double lora_alpha = 8.0;    // adapter scale s = alpha / r
  unsigned lora_targets = lora_q | lora_v;
  std::string attention = kReferenceAttention;  // see parse_gpt_attention
  Mask mask = Mask::causal();  // any mask of core/mask.hpp; every path honours it
  GeluApprox approx = GeluApprox::tanh;
  double eps = 1e-5;       // layer norm
  double init_std = 0.02;  // GPT-2 initialisation
  int threads = 0;         // attention kernels' OpenMP threads (0 = OpenMP's default)
};

// Size limits of a configuration. Each size (vocab, context, width, heads, layers, ffn, lora_rank) is at
// most kGptMaxSize, so that no product of two sizes overflows; the parameter count of the layout (one
// flat buffer, and three more of its size for gradients and AdamW moments) is at most
// kGptMaxParameters: 2^32 floats are 16 GiB per buffer, far past what this model is for.
inline constexpr arma::uword kGptMaxSize = arma::uword{1} << 24;
inline constexpr std::uint64_t kGptMaxParameters = std::uint64_t{1} << 32;

// Throws std::invalid_argument("function: ...") naming the offending fields and values.
void validate(const GptConfig& cfg, const char* function);

// One named tensor of the flat buffer: (rows, cols) column-major at offset.
struct GptEntry {
  std::string name;  // e.g. "h0.attn.wq", "h1.mlp.w2.lora_a"
  std::size_t offset = 0;
  arma::uword rows = 0, cols = 0;
  bool trainable = true;  // false: frozen (LoRA's base)
  bool decay = false;     // AdamW weight decay applies: weight matrices, embeddings, adapters; not biases or gains
  std::size_t size() const { return static_cast<std::size_t>(rows) * cols; }
};

inline constexpr std::size_t kNoEntry = static_cast<std::size_t>(-1);

// Indices into GptLayout::entries of one block's tensors. LoRA slots (q, k, v, o, w1, w2) hold
// kNoEntry where the projection has no adapter.
struct GptBlockIndex {
  std::size_t ln1_gamma, ln1_beta, wq, bq, wk, bk, wv, bv, wo, bo, ln2_gamma, ln2_beta, w1, b1, w2, b2;
  std::array<std::size_t, 6> lora_a, lora_b;
};
enum GptProjection : std::size_t { proj_q = 0, proj_k, proj_v, proj_o, proj_w1, proj_w2 };

struct GptLayout {
  std::vector<GptEntry> entries;
  std::size_t wte = 0, wpe = 0, lnf_gamma = 0, lnf_beta = 0;  // wte (D, V), wpe (D, T)
  std::vector<GptBlockIndex> blocks;
  std::size_t total = 0;  // elements in the flat buffer
};
GptLayout gpt_layout(const GptConfig& cfg);

// A flat buffer with one non-owning view per layout entry (arma::Mat over the buffer's memory,
// copy_aux_mem = false, strict = true): parameters, gradients and optimizer moments alike.
// Copying copies the values and builds fresh views over the copy's own buffer.
template <class T>
class GptTensors {
 public:
  explicit GptTensors(const GptLayout& layout);  // zero-filled
  GptTensors(const GptTensors& other);
  GptTensors& operator=(const GptTensors& other);  // same layout required

  const GptLayout& layout() const { return *layout_; }
  std::vector<T>& data() { return data_; }
  const std::vector<T>& data() const { return data_; }
  Mat<T>& mat(std::size_t entry) { return *views_[entry]; }
  const Mat<T>& mat(std::size_t entry) const { return *views_[entry]; }
  // Entries with one column are Col views.
  Col<T>& col(std::size_t entry) { return static_cast<Col<T>&>(*views_[entry]); }
  const Col<T>& col(std::size_t entry) const { return static_cast<const Col<T>&>(*views_[entry]); }
  Mat<T>& operator[](const std::string& name);  // throws std::invalid_argument if unknown

 private:
  void bind();
  std::shared_ptr<const GptLayout> layout_;
  std::vector<T> data_;
  std::vector<std::unique_ptr<Mat<T>>> views_;
};

// What backward needs, kept by forward for one block.
template <class T>
struct GptBlockCache {
  Mat<T> x;                  // (D, BN) block input
  LayerNormCache<T> ln1, ln2;
  Mat<T> a;                  // (D, BN) ln1(x), input of the q, k, v projections
  Mat<T> q, k, v;            // (D, BN)
  arma::Cube<T> p;           // reference attention: (N, N, B*H) probabilities, slice b*H + h
  std::vector<T> qh, kh, vh, oh;         // kernel attention: [B, H, N, dh] buffers
  std::vector<RowStats<T>> stats;        // kernel attention: the forward's row stats [B, H, N]
  Mat<T> o;                  // (D, BN) concatenated head outputs, input of the output projection
  Mat<T> x1;                 // (D, BN) x + attn
  Mat<T> b;                  // (D, BN) ln2(x1), input of w1
  Mat<T> h;                  // (F, BN) w1 b + b1
  Mat<T> g;                  // (F, BN) gelu(h), input of w2
  std::array<Mat<T>, 6> ax;  // (r, BN) A x of each adapted projection
};

// Wall time per kind of layer, accumulated by forward and backward when GptCache::profile is set
// (the benchmarks' per-layer split). Each section is charged the time since the previous one ended.
struct GptProfile {
  enum Part : std::size_t { embedding, layer_norm, qkv, attention, out_proj, mlp, head, loss, parts };
  static const char* name(std::size_t part);  // "embedding", "layer_norm", ...
  std::array<double, parts> forward{}, backward{};  // seconds
};

// Scratch of backward, kept with the cache so that a step of the same shape reuses it.
template <class T>
struct GptWorkspace {
  Mat<T> dq, dk, dv;                    // (D, BN) attention's input gradients
  std::vector<T> doh, dqh, dkh, dvh;    // kernel attention: [B, H, N, dh] buffers
};

// What forward keeps for backward. Reuse one cache across steps of the same shape (B, N): the
// attention path's buffers (probabilities, head-major copies, the additive mask, backward's
// workspace) and GELU's output keep their memory and are not allocated again.
template <class T>
struct GptCache {
  GptProfile* profile = nullptr;   // not owned; null: no timing
  arma::uword batch = 0, seq = 0;  // B, N
  TokenIds inputs;                 // (B*N)
  std::vector<GptBlockCache<T>> blocks;
  Mat<T> xf;                       // (D, BN) last block's output
  LayerNormCache<T> lnf;
  Mat<T> hf;                       // (D, BN) lnf(xf), input of the tied head
  CrossEntropyCache<T> ce;
  T loss = T(0);
  Mat<T> mask;                     // reference attention: mask_of as an additive (N, N) matrix, N = mask.n_rows
  Mask mask_of = Mask::none();
  mutable GptWorkspace<T> work;    // backward's scratch (backward takes the cache as const)
};

// Incremental decoding of one sequence: the keys and values of every position fed so far, per layer.
template <class T>
struct GptDecodeState {
  arma::uword length = 0;     // tokens fed so far; the next one takes position `length`
  std::vector<Mat<T>> k, v;   // per layer (D, T), columns 0 .. length-1 filled
  void reset() { length = 0; }
};

template <class T>
class Gpt {
 public:
  // Validates the configuration and initialises seeded as GPT-2: weights N(0, init_std), residual
  // output projections (wo, w2) N(0, init_std / sqrt(2L)), biases 0, layer-norm gains 1, LoRA A
  // N(0, 1/r) and B = 0 (the adapted model starts equal to the base). Values are drawn in double and
  // rounded, so Gpt<float> and Gpt<double> of one seed start from the same numbers up to rounding.
  Gpt(const GptConfig& cfg, std::uint64_t seed);
  // From given values, a flat buffer in the layout's order (e.g. another model's params().data()).
  Gpt(const GptConfig& cfg, const std::vector<T>& values);

  const GptConfig& config() const { return cfg_; }
  const GptLayout& layout() const { return params_.layout(); }
  GptTensors<T>& params() { return params_; }
  const GptTensors<T>& params() const { return params_; }

  // Mean cross-entropy of next-token prediction. inputs and targets hold B sequences of N tokens each,
  // concatenated (B*N ids); targets[n] is the token that follows inputs[n] (ignore_index allowed).
  T forward(const TokenIds& inputs, const TokenIds& targets, arma::uword batch, GptCache<T>& cache) const;
  // Logits (V, B*N) of every position, no loss.
  Mat<T> logits(const TokenIds& inputs, arma::uword batch) const;
  // Feeds `token` at position state.length (a key/value cache: one token's work per call, attention
  // over the cached keys and values) and returns the logits (V) of the token after it: the last column
  // of logits(the tokens fed since the state was empty, 1), up to rounding (dot products here, matrix
  // products there). Throws when the state holds T tokens already, when the token is outside the
  // vocabulary, or when the mask's row of this position depends on the sequence length (decoding
  // needs a mask whose row i is the same for every length > i: causal, causal sliding windows).
  Col<T> decode_step(std::int64_t token, GptDecodeState<T>& state) const;

  // Overwrites grads with d loss / d parameter for every trainable entry and zero for frozen ones;
  // the tied embedding's gradient is the sum of its input and output uses.
  void backward(const GptCache<T>& cache, GptTensors<T>& grads) const;

  // LoRA: W0 <- W0 + s B A for every adapter (forward then skips the adapters), and back. backward
  // refuses a merged model: unmerge before training.
  void merge_lora();
  void unmerge_lora();
  bool lora_merged() const { return merged_; }

 private:
  void apply_lora(T sign);
  Mat<T> forward_to_hidden(const TokenIds& inputs, arma::uword batch, arma::uword seq, GptCache<T>& cache) const;
  GptConfig cfg_;
  GptTensors<T> params_;
  bool merged_ = false;
};

// Text generation: `count` tokens drawn after `prompt` (1 <= prompt size), each from
// softmax(logits / temperature) of the tokens before it by std::discrete_distribution on `rng`. The
// model sees at most T tokens: when the window is full it restarts from its last T/2 tokens (T = 1:
// from none but the newest), so every prediction sees between T/2 and T tokens once there are that
// many. `cached` runs it with a key/value cache (GptDecodeState: one decode_step per token, and
// T/2 of them at each restart); otherwise one full forward of the window per token. Both see the
// same windows, so they draw the same tokens up to the rounding of their logits. Returns the prompt
// followed by the drawn tokens. Throws on an empty prompt, a prompt longer than T, a temperature
// that is not > 0, or a mask decode_step refuses (cached).
template <class T>
TokenIds gpt_generate(const Gpt<T>& model, const TokenIds& prompt, std::size_t count, double temperature,
                      std::mt19937_64& rng, bool cached);

// Sizes of a batch: N = inputs / B; throws naming `function` if they do not fit the configuration.
arma::uword gpt_sequence_length(const GptConfig& cfg, const TokenIds& inputs, arma::uword batch, const char* function);

}  // namespace ped::ref
