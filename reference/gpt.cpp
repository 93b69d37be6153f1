#include "reference/gpt.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>

#include "reference/attention.hpp"
#include "reference/linear.hpp"
#include "reference/positional_embedding.hpp"
#include "reference/residual.hpp"
#include "reference/token_embedding.hpp"

namespace ped::ref {

namespace {

constexpr const char* kProjectionNames[6] = {"q", "k", "v", "o", "w1", "w2"};

bool adapted(const GptConfig& cfg, std::size_t projection) {
  if (cfg.lora_rank == 0) return false;
  static constexpr unsigned bits[6] = {lora_q, lora_k, lora_v, lora_o, lora_mlp, lora_mlp};
  return (cfg.lora_targets & bits[projection]) != 0;
}

// A non-owning alias of a matrix the caller only reads (Armadillo's no-copy constructor takes T*).
template <class T>
Mat<T> alias(const Mat<T>& m) {
  return Mat<T>(const_cast<T*>(m.memptr()), m.n_rows, m.n_cols, false, true);
}
template <class T>
Col<T> alias_col(const Mat<T>& m) {
  return Col<T>(const_cast<T*>(m.memptr()), m.n_elem, false, true);
}

}  // namespace

unsigned parse_lora_targets(const std::string& text) {
  unsigned t = 0;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item == "q") t |= lora_q;
    else if (item == "k") t |= lora_k;
    else if (item == "v") t |= lora_v;
    else if (item == "o") t |= lora_o;
    else if (item == "mlp") t |= lora_mlp;
    else if (item == "none" || item.empty()) continue;
    else throw_invalid("parse_lora_targets", "unknown target '", item, "' in '", text, "', expected a comma-separated subset of q,k,v,o,mlp");
  }
  return t;
}

std::string lora_targets_string(unsigned t) {
  std::string s;
  const std::pair<unsigned, const char*> names[] = {{lora_q, "q"}, {lora_k, "k"}, {lora_v, "v"}, {lora_o, "o"}, {lora_mlp, "mlp"}};
  for (const auto& [bit, name] : names) {
    if (!(t & bit)) continue;
    if (!s.empty()) s.push_back(',');
    s.append(name);
  }
  return s.empty() ? "none" : s;
}

std::vector<std::string> gpt_attention_names() {
  std::vector<std::string> names = {kReferenceAttention};
  for (const AttentionImpl* impl : attention_impls()) {
    if (impl->has_backward<float>() && impl->has_backward<double>()) names.push_back(impl->name);
  }
  return names;
}

std::string parse_gpt_attention(const std::string& name) {
  const std::vector<std::string> names = gpt_attention_names();
  if (std::find(names.begin(), names.end(), name) != names.end()) return name;
  std::string known;
  for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
  throw_invalid("parse_gpt_attention", "unknown attention '", name, "', expected one of ", known);
}

namespace {

// Elements of gpt_layout(c), in double: every size is at most 2^24 here, so a block's count is below
// 2^53 and exact, and only the product with the layer count may round (harmless against the limit).
double parameter_count(const GptConfig& c) {
  const double d = static_cast<double>(c.width), f = static_cast<double>(c.ffn), r = static_cast<double>(c.lora_rank);
  double lora = 0;
  for (std::size_t j = 0; j < 6; ++j) {
    if (!adapted(c, j)) continue;
    lora += j < 4 ? 2 * r * d : r * (d + f);  // A (r, in) and B (out, r): q, k, v, o are (D, D), w1 (F, D), w2 (D, F)
  }
  // ln1, ln2: 4D; wq, wk, wv, wo and their biases: 4 (D^2 + D); w1, b1, w2, b2: 2 F D + F + D
  const double block = 4 * d + 4 * (d * d + d) + 2 * f * d + f + d + lora;
  return d * static_cast<double>(c.vocab) + d * static_cast<double>(c.context) + static_cast<double>(c.layers) * block +
         2 * d;
}

}  // namespace

void validate(const GptConfig& c, const char* fn) {
  const std::pair<const char*, arma::uword> sizes[] = {{"vocab", c.vocab},   {"context", c.context}, {"width", c.width},
                                                       {"heads", c.heads},   {"layers", c.layers},   {"ffn", c.ffn},
                                                       {"lora_rank", c.lora_rank}};
  for (const auto& [name, value] : sizes) {
    if (value > kGptMaxSize) throw_invalid(fn, name, " = ", value, ", expected <= ", kGptMaxSize);
  }
  if (c.vocab == 0) throw_invalid(fn, "vocab = 0, expected >= 1");
  if (c.context == 0) throw_invalid(fn, "context = 0, expected >= 1");
  if (c.width == 0) throw_invalid(fn, "width = 0, expected >= 1");
  if (c.heads == 0 || c.width % c.heads != 0) {
    throw_invalid(fn, "heads = ", c.heads, " does not divide the width D = ", c.width);
  }
  if (c.layers == 0) throw_invalid(fn, "layers = 0, expected >= 1");
  if (c.ffn == 0) throw_invalid(fn, "ffn = 0, expected >= 1");
  if (c.lora_rank > 0) {
    if (c.lora_targets == 0) throw_invalid(fn, "lora_rank = ", c.lora_rank, " but no LoRA target (expected some of q,k,v,o,mlp)");
    if (c.lora_targets & ~unsigned(lora_q | lora_k | lora_v | lora_o | lora_mlp)) {
      throw_invalid(fn, "lora_targets = ", c.lora_targets, " has unknown bits");
    }
    const arma::uword limit = (c.lora_targets & lora_mlp) ? std::min(c.width, c.ffn) : c.width;
    if (c.lora_rank > limit) {
      throw_invalid(fn, "lora_rank = ", c.lora_rank, " exceeds the smallest adapted dimension ", limit, " (width ", c.width,
                    ", ffn ", c.ffn, ")");
    }
    if (!std::isfinite(c.lora_alpha)) throw_invalid(fn, "lora_alpha = ", c.lora_alpha, ", expected a finite number");
  }
  if (!(c.eps > 0) || !std::isfinite(c.eps)) throw_invalid(fn, "eps = ", c.eps, ", expected > 0");
  if (!(c.init_std >= 0) || !std::isfinite(c.init_std)) throw_invalid(fn, "init_std = ", c.init_std, ", expected >= 0");
  if (c.threads < 0 || c.threads > 1024) throw_invalid(fn, "threads = ", c.threads, ", expected in [0, 1024]");
  try {
    parse_gpt_attention(c.attention);
  } catch (const std::invalid_argument& e) {
    throw_invalid(fn, "attention: ", e.what());
  }
  if (const double count = parameter_count(c); count > static_cast<double>(kGptMaxParameters)) {
    throw_invalid(fn, "vocab = ", c.vocab, ", context = ", c.context, ", width = ", c.width, ", layers = ", c.layers,
                  ", ffn = ", c.ffn, ", lora_rank = ", c.lora_rank, " make ", count,
                  " parameters, expected <= ", kGptMaxParameters);
  }
}

GptLayout gpt_layout(const GptConfig& c) {
  validate(c, "gpt_layout");
  GptLayout l;
  auto add = [&](std::string name, arma::uword rows, arma::uword cols, bool decay, bool adapter = false) {
    GptEntry e{.name = std::move(name), .offset = l.total, .rows = rows, .cols = cols,
               .trainable = c.lora_rank == 0 || adapter, .decay = decay};
    l.total += e.size();
    l.entries.push_back(std::move(e));
    return l.entries.size() - 1;
  };
  const arma::uword d = c.width, f = c.ffn, r = c.lora_rank;
  l.wte = add("wte", d, c.vocab, true);
  l.wpe = add("wpe", d, c.context, true);
  for (arma::uword i = 0; i < c.layers; ++i) {
    std::string prefix = "h";
    prefix.append(std::to_string(i)).push_back('.');
    // append, not operator+: GCC 12's -O3 -Wrestrict misfires on string + literal
    auto p = [&prefix](const char* leaf) { return std::string(prefix).append(leaf); };
    GptBlockIndex b{};
    b.ln1_gamma = add(p("ln1.gamma"), d, 1, false);
    b.ln1_beta = add(p("ln1.beta"), d, 1, false);
    b.wq = add(p("attn.wq"), d, d, true);
    b.bq = add(p("attn.bq"), d, 1, false);
    b.wk = add(p("attn.wk"), d, d, true);
    b.bk = add(p("attn.bk"), d, 1, false);
    b.wv = add(p("attn.wv"), d, d, true);
    b.bv = add(p("attn.bv"), d, 1, false);
    b.wo = add(p("attn.wo"), d, d, true);
    b.bo = add(p("attn.bo"), d, 1, false);
    b.ln2_gamma = add(p("ln2.gamma"), d, 1, false);
    b.ln2_beta = add(p("ln2.beta"), d, 1, false);
    b.w1 = add(p("mlp.w1"), f, d, true);
    b.b1 = add(p("mlp.b1"), f, 1, false);
    b.w2 = add(p("mlp.w2"), d, f, true);
    b.b2 = add(p("mlp.b2"), d, 1, false);
    const std::size_t base[6] = {b.wq, b.wk, b.wv, b.wo, b.w1, b.w2};
    for (std::size_t j = 0; j < 6; ++j) {
      b.lora_a[j] = b.lora_b[j] = kNoEntry;
      if (!adapted(c, j)) continue;
      const GptEntry& w = l.entries[base[j]];
      const std::string& name = l.entries[base[j]].name;
      const arma::uword in = w.cols, out = w.rows;
      std::string a_name = name, b_name = name;
      b.lora_a[j] = add(a_name.append(".lora_a"), r, in, true, true);
      b.lora_b[j] = add(b_name.append(".lora_b"), out, r, true, true);
    }
    l.blocks.push_back(b);
  }
  l.lnf_gamma = add("lnf.gamma", d, 1, false);
  l.lnf_beta = add("lnf.beta", d, 1, false);
  return l;
}

const char* GptProfile::name(std::size_t part) {
  static constexpr const char* names[parts] = {"embedding", "layer_norm", "qkv", "attention", "out_proj", "mlp", "head", "loss"};
  return part < parts ? names[part] : "?";
}

namespace {

// Charges the time since the previous lap (or construction) to a part of the profile; free without one.
class Lap {
 public:
  Lap(GptProfile* profile, bool forward)
      : slots_(profile ? (forward ? profile->forward.data() : profile->backward.data()) : nullptr) {
    if (slots_) last_ = std::chrono::steady_clock::now();
  }
  void operator()(std::size_t part) {
    if (!slots_) return;
    const auto now = std::chrono::steady_clock::now();
    slots_[part] += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  double* slots_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------------
// GptTensors

template <class T>
GptTensors<T>::GptTensors(const GptLayout& layout)
    : layout_(std::make_shared<const GptLayout>(layout)), data_(layout.total, T(0)) {
  bind();
}

template <class T>
GptTensors<T>::GptTensors(const GptTensors& other) : layout_(other.layout_), data_(other.data_) {
  bind();
}

template <class T>
GptTensors<T>& GptTensors<T>::operator=(const GptTensors& other) {
  if (this == &other) return *this;
  if (other.data_.size() != data_.size() || other.layout_->entries.size() != layout_->entries.size()) {
    throw_invalid("GptTensors::operator=", "layouts differ (", other.data_.size(), " vs ", data_.size(), " elements)");
  }
  std::memcpy(data_.data(), other.data_.data(), data_.size() * sizeof(T));
  return *this;
}

template <class T>
void GptTensors<T>::bind() {
  views_.clear();
  views_.reserve(layout_->entries.size());
  for (const GptEntry& e : layout_->entries) {
    T* p = data_.data() + e.offset;
    if (e.cols == 1) {
      views_.push_back(std::make_unique<Col<T>>(p, e.rows, false, true));
    } else {
      views_.push_back(std::make_unique<Mat<T>>(p, e.rows, e.cols, false, true));
    }
  }
}

template <class T>
Mat<T>& GptTensors<T>::operator[](const std::string& name) {
  for (std::size_t i = 0; i < layout_->entries.size(); ++i) {
    if (layout_->entries[i].name == name) return *views_[i];
  }
  throw_invalid("GptTensors::operator[]", "no tensor named '", name, "'");
}

// ---------------------------------------------------------------------------------------------------
// Gpt

arma::uword gpt_sequence_length(const GptConfig& cfg, const TokenIds& inputs, arma::uword batch, const char* fn) {
  if (batch == 0) throw_invalid(fn, "batch = 0, expected >= 1");
  if (inputs.empty()) throw_invalid(fn, "no input tokens");
  if (inputs.size() % batch != 0) {
    throw_invalid(fn, inputs.size(), " input tokens do not split into batch = ", batch, " sequences of equal length");
  }
  const arma::uword n = inputs.size() / batch;
  if (n > cfg.context) throw_invalid(fn, "sequence length N = ", n, " exceeds the context (positional table) T = ", cfg.context);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i] < 0 || static_cast<arma::uword>(inputs[i]) >= cfg.vocab) {
      throw_invalid(fn, "input token ", inputs[i], " at position ", i, " is outside the vocabulary [0, ", cfg.vocab, ")");
    }
  }
  return n;
}

template <class T>
Gpt<T>::Gpt(const GptConfig& cfg, std::uint64_t seed) : cfg_(cfg), params_(gpt_layout(cfg)) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const GptLayout& l = params_.layout();
  auto fill = [&](std::size_t e, double std) {
    for (T& x : params_.mat(e)) x = static_cast<T>(std * normal(rng));
  };
  const double resid_std = cfg.init_std / std::sqrt(2.0 * static_cast<double>(cfg.layers));
  fill(l.wte, cfg.init_std);
  fill(l.wpe, cfg.init_std);
  for (const GptBlockIndex& b : l.blocks) {
    params_.mat(b.ln1_gamma).fill(T(1));
    params_.mat(b.ln2_gamma).fill(T(1));
    fill(b.wq, cfg.init_std);
    fill(b.wk, cfg.init_std);
    fill(b.wv, cfg.init_std);
    fill(b.wo, resid_std);
    fill(b.w1, cfg.init_std);
    fill(b.w2, resid_std);
    for (std::size_t j = 0; j < 6; ++j) {
      if (b.lora_a[j] != kNoEntry) fill(b.lora_a[j], 1.0 / static_cast<double>(cfg.lora_rank));  // B stays 0
    }
  }
  params_.mat(l.lnf_gamma).fill(T(1));
}

template <class T>
Gpt<T>::Gpt(const GptConfig& cfg, const std::vector<T>& values) : cfg_(cfg), params_(gpt_layout(cfg)) {
  if (values.size() != params_.data().size()) {
    throw_invalid("Gpt::Gpt", values.size(), " parameter values, the configuration has ", params_.data().size());
  }
  std::copy(values.begin(), values.end(), params_.data().begin());  // in place: the views stay valid
}

namespace {

// Projection y = W x + b, or W0 x + b0 + s B (A x) with an unmerged adapter.
template <class T>
struct Projection {
  const GptTensors<T>& p;
  std::size_t w, bias, a, b;
  T alpha;  // s = alpha / r, as LoraLinearParams::scale()
  bool use_adapter;

  LoraLinearParams<T> lora() const {
    return {.w0 = alias(p.mat(w)), .b0 = alias_col(p.mat(bias)), .a = alias(p.mat(a)), .b = alias(p.mat(b)),
            .alpha = alpha};
  }
  Mat<T> forward(const Mat<T>& x, Mat<T>& ax) const {
    if (!use_adapter) return linear_forward(x, p.mat(w), p.col(bias));
    LoraLinearCache<T> c;
    c.x = alias(x);
    Mat<T> y = lora_linear_forward(x, lora(), c);
    ax = std::move(c.ax);
    return y;
  }
  // Returns dx; writes dW, db or dA, dB into g where they are trainable.
  Mat<T> backward(const Mat<T>& dy, const Mat<T>& x, const Mat<T>& ax, GptTensors<T>& g) const {
    const GptEntry& we = p.layout().entries[w];
    if (!use_adapter) {
      if (!we.trainable) return p.mat(w).t() * dy;  // frozen base: only dx = W^T dy
      LinearGrads<T> lg = linear_backward(dy, x, p.mat(w));
      g.mat(w) = lg.dw;
      g.mat(bias) = lg.db;
      return std::move(lg.dx);
    }
    LoraLinearCache<T> c{.x = alias(x), .ax = alias(ax)};
    LoraLinearGrads<T> lg = lora_linear_backward(dy, lora(), c);
    g.mat(a) = lg.da;
    g.mat(b) = lg.db;
    return std::move(lg.dx);
  }
};

template <class T>
Projection<T> projection(const GptConfig& cfg, const GptTensors<T>& p, const GptBlockIndex& bi, std::size_t j,
                         bool merged) {
  const std::size_t w[6] = {bi.wq, bi.wk, bi.wv, bi.wo, bi.w1, bi.w2};
  const std::size_t b[6] = {bi.bq, bi.bk, bi.bv, bi.bo, bi.b1, bi.b2};
  const bool has = bi.lora_a[j] != kNoEntry;
  return {p, w[j], b[j], bi.lora_a[j], bi.lora_b[j],
          static_cast<T>(cfg.lora_alpha), has && !merged};
}

// (D, B*N) with head h on rows h*dh.. <-> row-major [B, H, N, dh]: one token's dh-vector of one head
// is contiguous on both sides, so each is one copy.
template <class T>
void to_heads(const Mat<T>& m, arma::uword batch, arma::uword seq, arma::uword heads, std::vector<T>& out) {
  const arma::uword d = m.n_rows, dh = d / heads;
  out.resize(static_cast<std::size_t>(m.n_elem));
  for (arma::uword b = 0; b < batch; ++b)
    for (arma::uword h = 0; h < heads; ++h)
      for (arma::uword n = 0; n < seq; ++n)
        std::memcpy(out.data() + ((b * heads + h) * seq + n) * dh, m.colptr(b * seq + n) + h * dh, dh * sizeof(T));
}
template <class T>
void from_heads(const std::vector<T>& in, arma::uword batch, arma::uword seq, arma::uword heads, Mat<T>& m) {
  const arma::uword d = m.n_rows, dh = d / heads;
  for (arma::uword b = 0; b < batch; ++b)
    for (arma::uword h = 0; h < heads; ++h)
      for (arma::uword n = 0; n < seq; ++n)
        std::memcpy(m.colptr(b * seq + n) + h * dh, in.data() + ((b * heads + h) * seq + n) * dh, dh * sizeof(T));
}

// forward per sequence b and head h: S = s Q_h^T K_h + M (N, N), P = softmax_rows(S), O_h = V_h P^T;
// `mask` is cfg.mask as an additive (N, N) matrix (used by the reference path only)
template <class T>
void attention_core_forward(const GptConfig& cfg, arma::uword batch, arma::uword seq, const Mat<T>& mask,
                            GptBlockCache<T>& c) {
  const arma::uword d = c.q.n_rows, heads = cfg.heads, dh = d / heads;
  const T scale = T(1) / std::sqrt(static_cast<T>(dh));
  c.o.set_size(d, batch * seq);
  if (cfg.attention != kReferenceAttention) {
    to_heads(c.q, batch, seq, heads, c.qh);
    to_heads(c.k, batch, seq, heads, c.kh);
    to_heads(c.v, batch, seq, heads, c.vh);
    c.oh.resize(c.qh.size());
    c.stats.resize(static_cast<std::size_t>(batch * heads * seq));
    const AttentionShape shape{.batch = static_cast<std::int64_t>(batch), .heads = static_cast<std::int64_t>(heads),
                               .seq_q = static_cast<std::int64_t>(seq), .seq_k = static_cast<std::int64_t>(seq),
                               .head_dim = static_cast<std::int64_t>(dh)};
    run_forward<T>(attention_impl(cfg.attention), shape, cfg.mask, scale, c.qh.data(), c.kh.data(), c.vh.data(),
                   c.oh.data(), c.stats.data(), AttentionOptions{.threads = cfg.threads});
    from_heads(c.oh, batch, seq, heads, c.o);
    return;
  }
  c.p.set_size(seq, seq, batch * heads);
  for (arma::uword b = 0; b < batch; ++b) {
    attention_heads_forward(c.q, c.k, c.v, heads, scale, mask, b * seq, c.p, b * heads, c.o);
  }
}

// backward: dV_h = dO_h P, dP = dO_h^T V_h, dS = softmax_rows'(dP), dQ_h = s K_h dS^T, dK_h = s Q_h dS
// into w.dq, w.dk, w.dv
template <class T>
void attention_core_backward(const GptConfig& cfg, arma::uword batch, arma::uword seq, const GptBlockCache<T>& c,
                             const Mat<T>& dout, GptWorkspace<T>& w) {
  const arma::uword d = c.q.n_rows, heads = cfg.heads, dh = d / heads;
  const T scale = T(1) / std::sqrt(static_cast<T>(dh));
  w.dq.set_size(d, batch * seq);
  w.dk.set_size(d, batch * seq);
  w.dv.set_size(d, batch * seq);
  if (cfg.attention != kReferenceAttention) {
    to_heads(dout, batch, seq, heads, w.doh);
    w.dqh.resize(c.qh.size());
    w.dkh.resize(c.kh.size());
    w.dvh.resize(c.vh.size());
    const AttentionShape shape{.batch = static_cast<std::int64_t>(batch), .heads = static_cast<std::int64_t>(heads),
                               .seq_q = static_cast<std::int64_t>(seq), .seq_k = static_cast<std::int64_t>(seq),
                               .head_dim = static_cast<std::int64_t>(dh)};
    run_backward<T>(attention_impl(cfg.attention), shape, cfg.mask, scale, c.qh.data(), c.kh.data(), c.vh.data(),
                    c.oh.data(), c.stats.data(), w.doh.data(), w.dqh.data(), w.dkh.data(), w.dvh.data(),
                    AttentionOptions{.threads = cfg.threads});
    from_heads(w.dqh, batch, seq, heads, w.dq);
    from_heads(w.dkh, batch, seq, heads, w.dk);
    from_heads(w.dvh, batch, seq, heads, w.dv);
    return;
  }
  for (arma::uword b = 0; b < batch; ++b) {
    attention_heads_backward(c.q, c.k, c.v, heads, scale, c.p, b * heads, dout, b * seq, w.dq, w.dk, w.dv);
  }
}

}  // namespace

template <class T>
Mat<T> Gpt<T>::forward_to_hidden(const TokenIds& inputs, arma::uword batch, arma::uword seq, GptCache<T>& cache) const {
  const GptLayout& l = params_.layout();
  const T eps = static_cast<T>(cfg_.eps);
  cache.batch = batch;
  cache.seq = seq;
  cache.inputs = inputs;
  Lap lap(cache.profile, true);
  // forward: X = W_E[:, ids] + W_P[:, 0:N] per sequence
  Mat<T> x = token_embedding_forward(params_.mat(l.wte), inputs);
  const Mat<T> pos = positional_embedding_forward(params_.mat(l.wpe), seq);
  for (arma::uword b = 0; b < batch; ++b) x.cols(b * seq, (b + 1) * seq - 1) += pos;
  lap(GptProfile::embedding);
  cache.blocks.resize(l.blocks.size());
  // the reference path's additive mask, built once for every block and kept for the next forward
  if (cfg_.attention == kReferenceAttention && (cache.mask.n_rows != seq || !(cache.mask_of == cfg_.mask))) {
    cache.mask = additive_mask<T>(cfg_.mask, seq);
    cache.mask_of = cfg_.mask;
  }
  const Mat<T>& mask = cache.mask;
  for (std::size_t i = 0; i < l.blocks.size(); ++i) {
    const GptBlockIndex& bi = l.blocks[i];
    GptBlockCache<T>& c = cache.blocks[i];
    auto proj = [&](std::size_t j) { return projection(cfg_, params_, bi, j, merged_); };
    // forward: x1 = x + Wo attn(Wq a, Wk a, Wv a) + bo, a = ln1(x)
    c.x = std::move(x);
    c.a = layer_norm_forward(c.x, params_.col(bi.ln1_gamma), params_.col(bi.ln1_beta), eps, c.ln1);
    lap(GptProfile::layer_norm);
    c.q = proj(proj_q).forward(c.a, c.ax[proj_q]);
    c.k = proj(proj_k).forward(c.a, c.ax[proj_k]);
    c.v = proj(proj_v).forward(c.a, c.ax[proj_v]);
    lap(GptProfile::qkv);
    attention_core_forward(cfg_, batch, seq, mask, c);
    lap(GptProfile::attention);
    c.x1 = residual_forward(c.x, proj(proj_o).forward(c.o, c.ax[proj_o]));
    lap(GptProfile::out_proj);
    // forward: y = x1 + W2 gelu(W1 b + b1) + b2, b = ln2(x1)
    c.b = layer_norm_forward(c.x1, params_.col(bi.ln2_gamma), params_.col(bi.ln2_beta), eps, c.ln2);
    lap(GptProfile::layer_norm);
    c.h = proj(proj_w1).forward(c.b, c.ax[proj_w1]);
    gelu_forward(c.h, cfg_.approx, c.g);
    x = residual_forward(c.x1, proj(proj_w2).forward(c.g, c.ax[proj_w2]));
    lap(GptProfile::mlp);
  }
  cache.xf = std::move(x);
  cache.hf = layer_norm_forward(cache.xf, params_.col(l.lnf_gamma), params_.col(l.lnf_beta), eps, cache.lnf);
  lap(GptProfile::layer_norm);
  // forward: Z = W_E^T hf (V, BN), the head tied to the token embedding
  Mat<T> z = params_.mat(l.wte).t() * cache.hf;
  lap(GptProfile::head);
  return z;
}

template <class T>
T Gpt<T>::forward(const TokenIds& inputs, const TokenIds& targets, arma::uword batch, GptCache<T>& cache) const {
  constexpr const char* fn = "Gpt::forward";
  const arma::uword seq = gpt_sequence_length(cfg_, inputs, batch, fn);
  if (targets.size() != inputs.size()) throw_invalid(fn, targets.size(), " targets for ", inputs.size(), " input tokens");
  for (std::size_t i = 0; i < targets.size(); ++i) {
    if (targets[i] != kDefaultIgnoreIndex && (targets[i] < 0 || static_cast<arma::uword>(targets[i]) >= cfg_.vocab)) {
      throw_invalid(fn, "target ", targets[i], " at position ", i, " is outside the vocabulary [0, ", cfg_.vocab, ")");
    }
  }
  cfg_.mask.validate(fn, static_cast<std::int64_t>(seq), static_cast<std::int64_t>(seq));
  const Mat<T> z = forward_to_hidden(inputs, batch, seq, cache);
  Lap lap(cache.profile, true);
  cache.loss = cross_entropy_forward(z, targets, kDefaultIgnoreIndex, cache.ce);
  lap(GptProfile::loss);
  return cache.loss;
}

template <class T>
Mat<T> Gpt<T>::logits(const TokenIds& inputs, arma::uword batch) const {
  constexpr const char* fn = "Gpt::logits";
  const arma::uword seq = gpt_sequence_length(cfg_, inputs, batch, fn);
  cfg_.mask.validate(fn, static_cast<std::int64_t>(seq), static_cast<std::int64_t>(seq));
  GptCache<T> cache;
  return forward_to_hidden(inputs, batch, seq, cache);
}

template <class T>
Col<T> Gpt<T>::decode_step(std::int64_t token, GptDecodeState<T>& state) const {
  constexpr const char* fn = "Gpt::decode_step";
  const GptLayout& l = params_.layout();
  const arma::uword pos = state.length, d = cfg_.width, heads = cfg_.heads, dh = d / heads;
  if (pos >= cfg_.context) throw_invalid(fn, "the state holds ", pos, " tokens, the context T = ", cfg_.context, " is full");
  if (token < 0 || static_cast<arma::uword>(token) >= cfg_.vocab) {
    throw_invalid(fn, "token ", token, " is outside the vocabulary [0, ", cfg_.vocab, ")");
  }
  // the full forward over pos + 1 tokens uses row pos of the mask at length pos + 1; the cached keys
  // and values of the earlier rows were made at their own lengths, the same rows only if the mask's
  // rows do not depend on the length
  const auto n64 = static_cast<std::int64_t>(pos + 1), t64 = static_cast<std::int64_t>(cfg_.context);
  std::vector<KeyInterval> keys, keys_full;
  cfg_.mask.row_intervals(static_cast<std::int64_t>(pos), n64, n64, keys);
  cfg_.mask.row_intervals(static_cast<std::int64_t>(pos), t64, t64, keys_full);
  if (keys.size() != keys_full.size() ||
      !std::equal(keys.begin(), keys.end(), keys_full.begin(),
                  [](const KeyInterval& a, const KeyInterval& b) { return a.lo == b.lo && a.hi == b.hi; })) {
    throw_invalid(fn, "mask ", cfg_.mask.name(), " gives row ", pos, " different keys at length ", pos + 1, " and ",
                  cfg_.context, "; a key/value cache needs rows that do not depend on the length");
  }
  if (state.k.size() != l.blocks.size() || (!state.k.empty() && state.k[0].n_rows != d)) {
    state.k.assign(l.blocks.size(), Mat<T>(d, cfg_.context));
    state.v.assign(l.blocks.size(), Mat<T>(d, cfg_.context));
  }
  const T eps = static_cast<T>(cfg_.eps);
  const T scale = T(1) / std::sqrt(static_cast<T>(dh));
  // forward: x = W_E[:, token] + W_P[:, pos]
  Mat<T> x = params_.mat(l.wte).col(static_cast<arma::uword>(token)) + params_.mat(l.wpe).col(pos);
  Col<T> s(pos + 1);
  Mat<T> o(d, 1);
  std::array<Mat<T>, 6> ax;
  for (std::size_t i = 0; i < l.blocks.size(); ++i) {
    const GptBlockIndex& bi = l.blocks[i];
    auto proj = [&](std::size_t j) { return projection(cfg_, params_, bi, j, merged_); };
    LayerNormCache<T> ln;
    const Mat<T> a = layer_norm_forward(x, params_.col(bi.ln1_gamma), params_.col(bi.ln1_beta), eps, ln);
    const Mat<T> q = proj(proj_q).forward(a, ax[proj_q]);
    state.k[i].col(pos) = proj(proj_k).forward(a, ax[proj_k]);
    state.v[i].col(pos) = proj(proj_v).forward(a, ax[proj_v]);
    // per head: s_j = scale q_h . k_h,j over the visible keys j, p = softmax(s), o_h = sum_j p_j v_h,j
    for (arma::uword h = 0; h < heads; ++h) {
      const arma::span rows(h * dh, (h + 1) * dh - 1);
      s.fill(-std::numeric_limits<T>::infinity());
      for (const KeyInterval& kv : keys) {
        for (auto j = static_cast<arma::uword>(kv.lo); j < static_cast<arma::uword>(kv.hi); ++j) {
          s(j) = scale * arma::dot(q(rows, arma::span(0, 0)), state.k[i](rows, arma::span(j, j)));
        }
      }
      const T m = s.max();
      if (m == -std::numeric_limits<T>::infinity()) {  // no visible key: a zero row, as softmax_rows_forward
        o(rows, arma::span(0, 0)).zeros();
        continue;
      }
      const Col<T> p = arma::exp(s - m);
      o(rows, arma::span(0, 0)) = state.v[i](rows, arma::span(0, pos)) * (p / arma::accu(p));
    }
    const Mat<T> x1 = x + proj(proj_o).forward(o, ax[proj_o]);
    LayerNormCache<T> ln2;
    const Mat<T> b = layer_norm_forward(x1, params_.col(bi.ln2_gamma), params_.col(bi.ln2_beta), eps, ln2);
    const Mat<T> g = gelu_forward(proj(proj_w1).forward(b, ax[proj_w1]), cfg_.approx);
    x = x1 + proj(proj_w2).forward(g, ax[proj_w2]);
  }
  LayerNormCache<T> lnf;
  const Mat<T> hf = layer_norm_forward(x, params_.col(l.lnf_gamma), params_.col(l.lnf_beta), eps, lnf);
  state.length = pos + 1;
  return params_.mat(l.wte).t() * hf;
}

template <class T>
TokenIds gpt_generate(const Gpt<T>& model, const TokenIds& prompt, std::size_t count, double temperature,
                      std::mt19937_64& rng, bool cached) {
  constexpr const char* fn = "gpt_generate";
  const arma::uword context = model.config().context;
  if (prompt.empty()) throw_invalid(fn, "empty prompt, expected at least one token");
  if (prompt.size() > context) throw_invalid(fn, "prompt of ", prompt.size(), " tokens exceeds the context T = ", context);
  if (!(temperature > 0) || !std::isfinite(temperature)) throw_invalid(fn, "temperature = ", temperature, ", expected > 0");
  gpt_sequence_length(model.config(), prompt, 1, fn);  // tokens in the vocabulary
  TokenIds ids = prompt;
  ids.reserve(prompt.size() + count);
  std::size_t start = 0;  // the window is ids[start, ids.size())
  GptDecodeState<T> state;
  Col<T> z;
  if (cached) {
    for (const auto t : ids) z = model.decode_step(t, state);
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (!cached) {
      const TokenIds window(ids.begin() + static_cast<std::ptrdiff_t>(start), ids.end());
      const Mat<T> all = model.logits(window, 1);
      z = all.col(all.n_cols - 1);
    }
    arma::vec p = arma::conv_to<arma::vec>::from(z) / temperature;
    p = arma::exp(p - p.max());
    std::discrete_distribution<std::int64_t> pick(p.begin(), p.end());
    ids.push_back(pick(rng));
    if (ids.size() - start > context) {  // full: restart from the last T/2 tokens (at least the new one)
      start = ids.size() - std::max<std::size_t>(context / 2, 1);
      if (cached) {
        state.reset();
        for (std::size_t j = start; j + 1 < ids.size(); ++j) model.decode_step(ids[j], state);
      }
    }
    if (cached) z = model.decode_step(ids.back(), state);
  }
  return ids;
}

template <class T>
void Gpt<T>::backward(const GptCache<T>& cache, GptTensors<T>& g) const {
  constexpr const char* fn = "Gpt::backward";
  const GptLayout& l = params_.layout();
  if (g.data().size() != l.total) throw_invalid(fn, "gradient buffer has ", g.data().size(), " elements, expected ", l.total);
  if (cache.blocks.size() != l.blocks.size() || cache.hf.n_rows != cfg_.width) {
    throw_invalid(fn, "the cache does not come from a forward of this model");
  }
  // Merged adapters get no gradient, yet an optimizer step would still move them (momentum, weight
  // decay), and unmerging would then subtract a different s B A from the base than was added.
  if (merged_ && cfg_.lora_rank > 0) throw_invalid(fn, "the LoRA adapters are merged; unmerge_lora() before training");
  std::fill(g.data().begin(), g.data().end(), T(0));
  const bool base_trains = cfg_.lora_rank == 0;
  const arma::uword batch = cache.batch, seq = cache.seq;
  const Mat<T>& wte = params_.mat(l.wte);

  Lap lap(cache.profile, false);
  // forward: L = cross_entropy(Z), Z = W_E^T hf
  const Mat<T> dz = cross_entropy_backward(cache.ce);  // (V, BN)
  lap(GptProfile::loss);
  if (base_trains) g.mat(l.wte) = cache.hf * dz.t();   // the head's share of dW_E (D, V)
  const Mat<T> dhf = wte * dz;
  lap(GptProfile::head);
  LayerNormGrads<T> gf = layer_norm_backward(dhf, params_.col(l.lnf_gamma), cache.lnf);
  lap(GptProfile::layer_norm);
  if (base_trains) {
    g.mat(l.lnf_gamma) = gf.dgamma;
    g.mat(l.lnf_beta) = gf.dbeta;
  }
  Mat<T> dx = std::move(gf.dx);

  for (std::size_t i = l.blocks.size(); i-- > 0;) {
    const GptBlockIndex& bi = l.blocks[i];
    const GptBlockCache<T>& c = cache.blocks[i];
    auto proj = [&](std::size_t j) { return projection(cfg_, params_, bi, j, merged_); };
    // forward: y = x1 + W2 g + b2, g = gelu(h), h = W1 b + b1, b = ln2(x1)
    ResidualGrads<T> r2 = residual_backward(dx);
    Mat<T> dh = proj(proj_w2).backward(r2.dfx, c.g, c.ax[proj_w2], g);  // dg, then in place dh
    gelu_backward(dh, c.h, cfg_.approx, dh);
    const Mat<T> db = proj(proj_w1).backward(dh, c.b, c.ax[proj_w1], g);
    lap(GptProfile::mlp);
    LayerNormGrads<T> g2 = layer_norm_backward(db, params_.col(bi.ln2_gamma), c.ln2);
    const Mat<T> dx1 = r2.dx + g2.dx;
    lap(GptProfile::layer_norm);
    // forward: x1 = x + Wo O + bo, O = attn(Q, K, V), Q = Wq a + bq (K, V alike), a = ln1(x)
    ResidualGrads<T> r1 = residual_backward(dx1);
    const Mat<T> d_o = proj(proj_o).backward(r1.dfx, c.o, c.ax[proj_o], g);
    lap(GptProfile::out_proj);
    GptWorkspace<T>& w = cache.work;
    attention_core_backward(cfg_, batch, seq, c, d_o, w);
    lap(GptProfile::attention);
    const Mat<T> da = proj(proj_q).backward(w.dq, c.a, c.ax[proj_q], g) +
                      proj(proj_k).backward(w.dk, c.a, c.ax[proj_k], g) + proj(proj_v).backward(w.dv, c.a, c.ax[proj_v], g);
    lap(GptProfile::qkv);
    LayerNormGrads<T> g1 = layer_norm_backward(da, params_.col(bi.ln1_gamma), c.ln1);
    dx = r1.dx + g1.dx;
    if (base_trains) {
      g.mat(bi.ln1_gamma) = g1.dgamma;
      g.mat(bi.ln1_beta) = g1.dbeta;
      g.mat(bi.ln2_gamma) = g2.dgamma;
      g.mat(bi.ln2_beta) = g2.dbeta;
    }
    lap(GptProfile::layer_norm);
  }
  if (!base_trains) return;
  // forward: X = W_E[:, ids] + W_P[:, 0:N]; the embedding's input share adds to the head's
  g.mat(l.wte) += token_embedding_backward(dx, cache.inputs, cfg_.vocab);
  Mat<T> dpos(cfg_.width, seq, arma::fill::zeros);
  for (arma::uword b = 0; b < batch; ++b) dpos += dx.cols(b * seq, (b + 1) * seq - 1);
  g.mat(l.wpe) = positional_embedding_backward(dpos, cfg_.context);
  lap(GptProfile::embedding);
}

// W <- W + sign * s B A for every adapted projection, s = alpha / r as LoraLinearParams::scale().
template <class T>
void Gpt<T>::apply_lora(T sign) {
  const T s = sign * static_cast<T>(cfg_.lora_alpha) / static_cast<T>(std::max<arma::uword>(cfg_.lora_rank, 1));
  for (const GptBlockIndex& bi : params_.layout().blocks) {
    const std::size_t w[6] = {bi.wq, bi.wk, bi.wv, bi.wo, bi.w1, bi.w2};
    for (std::size_t j = 0; j < 6; ++j) {
      if (bi.lora_a[j] != kNoEntry) params_.mat(w[j]) += s * (params_.mat(bi.lora_b[j]) * params_.mat(bi.lora_a[j]));
    }
  }
}

template <class T>
void Gpt<T>::merge_lora() {
  if (merged_) throw_invalid("Gpt::merge_lora", "the adapters are already merged");
  apply_lora(T(1));
  merged_ = true;
}

template <class T>
void Gpt<T>::unmerge_lora() {
  if (!merged_) throw_invalid("Gpt::unmerge_lora", "the adapters are not merged");
  apply_lora(T(-1));
  merged_ = false;
}

template class GptTensors<float>;
template class GptTensors<double>;
template class Gpt<float>;
template class Gpt<double>;
template TokenIds gpt_generate<float>(const Gpt<float>&, const TokenIds&, std::size_t, double, std::mt19937_64&, bool);
template TokenIds gpt_generate<double>(const Gpt<double>&, const TokenIds&, std::size_t, double, std::mt19937_64&, bool);

}  // namespace ped::ref
