#include "plugin_host/plugin_loader.hpp"

#include <dlfcn.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>

#include "pedestrian/attention_plugin.h"
#include "plugin_host/reduced_precision.hpp"
#include "variants/features.hpp"
#include "variants/registry.hpp"

namespace ped::plugin {

namespace {

// The harness speaks this version of the ABI and every earlier one (1 and 2).
constexpr std::uint32_t kHostAbiVersion = PED_ATTENTION_PLUGIN_ABI_VERSION;
static_assert(kHostAbiVersion == 2, "a new ABI version needs its argument sizes and feature bits below");
// Bytes of PedAttentionPlugin a version-1 plugin describes.
constexpr std::size_t kVersion1PluginSize = offsetof(PedAttentionPlugin, backward) + sizeof(PedAttentionBackwardFn);
constexpr std::uint32_t kKnownDtypes = PED_DTYPE_FLOAT32 | PED_DTYPE_FLOAT64 | PED_DTYPE_BFLOAT16 | PED_DTYPE_FLOAT16;
constexpr std::uint32_t kKnownMaskKinds = (1u << (PED_MASK_ELEMENTS + 1)) - 1;

const char* const kAbiMaskNames[] = {"none", "causal", "sliding_window", "explicit_blocks", "elements"};

// The ABI's feature bits (version 2) and the registry's AttentionFeature each stands for.
struct AbiFeature {
  std::uint64_t bit;
  const char* macro;
  AttentionFeature feature;
};
constexpr AbiFeature kAbiFeatures[] = {
    {PED_FEATURE_GROUPED_QUERY_HEADS, "PED_FEATURE_GROUPED_QUERY_HEADS", AttentionFeature::grouped_query},
    {PED_FEATURE_VARIABLE_LENGTH, "PED_FEATURE_VARIABLE_LENGTH", AttentionFeature::variable_length},
    {PED_FEATURE_DROPOUT, "PED_FEATURE_DROPOUT", AttentionFeature::dropout},
    {PED_FEATURE_ALIBI, "PED_FEATURE_ALIBI", AttentionFeature::alibi},
    {PED_FEATURE_SOFTCAP, "PED_FEATURE_SOFTCAP", AttentionFeature::softcap},
    {PED_FEATURE_SINKS, "PED_FEATURE_SINKS", AttentionFeature::sinks},
};

struct Plugin {
  std::string path;
  const PedAttentionPlugin* description = nullptr;
  std::uint32_t abi_version = 1;  // the version the plugin speaks: the size of the argument structs
  std::uint32_t features = 0;     // the registry's AttentionFeature bits its `features` declare

  bool declares(AttentionFeature f) const { return (features & attention_feature_bit(f)) != 0; }
  std::uint32_t forward_args_size() const {
    return static_cast<std::uint32_t>(abi_version == 1 ? PED_ATTENTION_FORWARD_ARGS_V1_SIZE : sizeof(PedAttentionForwardArgs));
  }
  std::uint32_t backward_args_size() const {
    return static_cast<std::uint32_t>(abi_version == 1 ? PED_ATTENTION_BACKWARD_ARGS_V1_SIZE : sizeof(PedAttentionBackwardArgs));
  }
};
static_assert(PED_ATTENTION_FORWARD_ARGS_V1_SIZE == 64 && PED_ATTENTION_BACKWARD_ARGS_V1_SIZE == 96);
static_assert(PED_ATTENTION_FORWARD_ARGS_V2_SIZE == sizeof(PedAttentionForwardArgs));
static_assert(PED_ATTENTION_BACKWARD_ARGS_V2_SIZE == sizeof(PedAttentionBackwardArgs));

// ---- row statistics: the ABI's float64 lse <-> the in-tree RowStatistic<T> ----------------------
// The one place that knows both forms (see RowStatistic in variants/registry.hpp).

// lse -> {max, inv_sum}: max is lse rounded to T and inv_sum = exp(max - lse) carries the rounding,
// so that max - log(inv_sum) gives the plugin's lse back to about T's epsilon, not ulp(|lse|) / 2.
template <class T>
void to_row_statistics(const std::vector<double>& lse, RowStatistic<T>* out) {
  for (std::size_t i = 0; i < lse.size(); ++i) {
    RowStatistic<T>& r = out[i];
    if (lse[i] == -std::numeric_limits<double>::infinity()) {  // a row that sees no key
      r = RowStatistic<T>{};
      continue;
    }
    r.max = static_cast<T>(lse[i]);
    r.inv_sum = static_cast<T>(std::exp(static_cast<double>(r.max) - lse[i]));  // NaN stays NaN
  }
}

// {max, inv_sum} -> lse = max - log(inv_sum), in double.
template <class T>
std::vector<double> from_row_statistics(const RowStatistic<T>* stats, std::size_t rows) {
  std::vector<double> lse(rows);
  for (std::size_t i = 0; i < rows; ++i) {
    const double max = static_cast<double>(stats[i].max);
    lse[i] = max == -std::numeric_limits<double>::infinity() ? max : max - std::log(static_cast<double>(stats[i].inv_sum));
  }
  return lse;
}

// ---- masks -----------------------------------------------------------------------------------------

// A Mask in the most specific ABI kind the plugin takes; ELEMENTS spells out every visible pair.
class AbiMask {
 public:
  // With per-sequence lengths (seqlens_q / seqlens_k, B of them, either may be null) an ELEMENTS
  // mask holds B blocks of seq_q x seq_k bytes, block b the pattern for sequence b's own lengths.
  AbiMask(const Mask& mask, std::int64_t seq_q, std::int64_t seq_k, std::uint32_t plugin_kinds,
          std::int64_t batch = 1, const std::int64_t* seqlens_q = nullptr, const std::int64_t* seqlens_k = nullptr) {
    abi_.struct_size = sizeof(PedAttentionMask);
    auto takes = [&](PedMaskKind kind) { return (plugin_kinds & (1u << kind)) != 0; };
    const Mask::Kind kind = mask.kind();
    if (kind == Mask::Kind::none && takes(PED_MASK_NONE)) {
      abi_.kind = PED_MASK_NONE;
    } else if (kind == Mask::Kind::causal && takes(PED_MASK_CAUSAL)) {
      abi_.kind = PED_MASK_CAUSAL;
    } else if (kind == Mask::Kind::sliding_window && takes(PED_MASK_SLIDING_WINDOW)) {
      abi_.kind = PED_MASK_SLIDING_WINDOW;
      abi_.window_left = mask.window().left;
      abi_.window_right = mask.window().right;
    } else if (kind == Mask::Kind::explicit_blocks && takes(PED_MASK_EXPLICIT_BLOCKS)) {
      const Mask::Blocks b = mask.explicit_layout();
      abi_.kind = PED_MASK_EXPLICIT_BLOCKS;
      abi_.block_q = b.block_q;
      abi_.block_k = b.block_k;
      abi_.block_rows = b.rows;
      abi_.block_cols = b.cols;
      abi_.blocks = b.visible->data();
    } else if (takes(PED_MASK_ELEMENTS)) {
      abi_.kind = PED_MASK_ELEMENTS;
      const bool lengths = seqlens_q != nullptr || seqlens_k != nullptr;
      const std::int64_t blocks = lengths ? batch : 1;
      elements_.assign(static_cast<std::size_t>(blocks * seq_q * seq_k), 0);
      std::vector<KeyInterval> intervals;
      for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t lq = seqlens_q != nullptr ? seqlens_q[b] : seq_q;
        const std::int64_t lk = seqlens_k != nullptr ? seqlens_k[b] : seq_k;
        if (lk == 0) continue;
        for (std::int64_t i = 0; i < lq; ++i) {
          mask.row_intervals(i, lq, lk, intervals);
          const auto row = elements_.begin() + (b * seq_q + i) * seq_k;
          for (const KeyInterval& iv : intervals) std::fill(row + iv.lo, row + iv.hi, std::uint8_t{1});
        }
      }
      abi_.elements = elements_.data();
    } else {
      throw std::logic_error("AbiMask: mask " + mask.name() + " has no ABI kind the plugin takes");
    }
  }
  AbiMask(const AbiMask&) = delete;
  AbiMask& operator=(const AbiMask&) = delete;
  const PedAttentionMask* abi() const { return &abi_; }

 private:
  PedAttentionMask abi_{};
  std::vector<std::uint8_t> elements_;
};

// The registry's mask kinds that reach the plugin in an ABI kind it takes.
std::uint32_t registry_mask_kinds(std::uint32_t plugin_kinds) {
  if (plugin_kinds & (1u << PED_MASK_ELEMENTS)) return kAllMaskKinds;
  std::uint32_t bits = 0;
  if (plugin_kinds & (1u << PED_MASK_NONE)) bits |= mask_kind_bit(Mask::Kind::none);
  if (plugin_kinds & (1u << PED_MASK_CAUSAL)) bits |= mask_kind_bit(Mask::Kind::causal);
  if (plugin_kinds & (1u << PED_MASK_SLIDING_WINDOW)) bits |= mask_kind_bit(Mask::Kind::sliding_window);
  if (plugin_kinds & (1u << PED_MASK_EXPLICIT_BLOCKS)) bits |= mask_kind_bit(Mask::Kind::explicit_blocks);
  return bits;
}

// ---- calls -----------------------------------------------------------------------------------------

template <class Fn, class Args>
void call_plugin(const Plugin& p, const char* pass, Fn fn, const Args* args) {
  char error[1024] = {};
  const int code = fn(args, error, sizeof error);
  error[sizeof error - 1] = '\0';
  if (code != 0) {
    throw std::runtime_error("plugin '" + std::string(p.description->name) + "' " + pass + " returned error " +
                             std::to_string(code) + ": " + (error[0] != '\0' ? error : "(no message)"));
  }
}

std::string where(const Plugin& p, const char* pass) {
  return "plugin '" + std::string(p.description->name) + "' " + pass + " ";
}

// ---- version 2's features: the 1-D tensors and scalars of the argument structs ----------------------

// A 1-D DLTensor (compact) over values of the harness's own: a copy of the caller's inputs, so that
// a plugin writing into one is caught (check_unchanged) and the caller's arrays stay untouched.
template <class T>
class Vector1d {
 public:
  Vector1d() = default;
  Vector1d(const T* values, std::int64_t n) : values_(values, values + n), shape_(n) {
    static_assert(sizeof(T) == 8);
    dl_.data = values_.data();
    dl_.device = DLDevice{kDLCPU, 0};
    dl_.ndim = 1;
    dl_.dtype = DLDataType{static_cast<std::uint8_t>(std::is_floating_point_v<T> ? kDLFloat : kDLInt), 64, 1};
    dl_.shape = &shape_;
    dl_.strides = &stride_;
  }
  Vector1d(const Vector1d&) = delete;
  Vector1d& operator=(const Vector1d&) = delete;
  DLTensor* dl() { return &dl_; }
  std::vector<T>& values() { return values_; }
  // Throws std::runtime_error when the values differ bitwise from `source`.
  void check_unchanged(const T* source, const std::string& what) const {
    if (!values_.empty() && std::memcmp(values_.data(), source, values_.size() * sizeof(T)) != 0) {
      throw std::runtime_error("wrote into the input " + what);
    }
  }

 private:
  std::vector<T> values_;
  std::int64_t shape_ = 0, stride_ = 1;
  DLTensor dl_{};
};

// The version-2 fields of one call, set only for the features the plugin declares (the registry
// refuses a call using another, and so does check_declared for the 16-bit path).
class AbiFeatures {
 public:
  AbiFeatures(const Plugin& p, const AttentionShape& s, const AttentionFeatures& f, bool backward) : f_(f) {
    if (p.declares(AttentionFeature::alibi) && f.alibi_slopes != nullptr) slopes_.emplace(f.alibi_slopes, s.heads);
    if (p.declares(AttentionFeature::sinks) && f.sinks != nullptr) {
      sinks_.emplace(f.sinks, s.heads);
      if (backward) {
        const std::vector<double> nan(static_cast<std::size_t>(s.heads), std::numeric_limits<double>::quiet_NaN());
        dsinks_.emplace(nan.data(), s.heads);
      }
    }
    if (p.declares(AttentionFeature::variable_length)) {
      if (f.seqlens_q != nullptr) seqlens_q_.emplace(f.seqlens_q, s.batch);
      if (f.seqlens_k != nullptr) seqlens_k_.emplace(f.seqlens_k, s.batch);
    }
    if (p.declares(AttentionFeature::softcap)) softcap_ = f.softcap;
    if (p.declares(AttentionFeature::dropout)) {
      dropout_p_ = f.dropout_p;
      dropout_seed_ = f.dropout_p > 0 ? f.dropout_seed : 0;
    }
  }

  // The fields a version-2 plugin reads; a version-1 plugin's struct_size ends before them.
  template <class Args>
  void set(Args& args) {
    args.alibi_slopes = slopes_ ? slopes_->dl() : nullptr;
    args.softcap = softcap_;
    args.dropout_p = dropout_p_;
    args.dropout_seed = dropout_seed_;
    args.sinks = sinks_ ? sinks_->dl() : nullptr;
    args.seqlens_q = seqlens_q_ ? seqlens_q_->dl() : nullptr;
    args.seqlens_k = seqlens_k_ ? seqlens_k_->dl() : nullptr;
    if constexpr (std::is_same_v<Args, PedAttentionBackwardArgs>) args.dsinks = dsinks_ ? dsinks_->dl() : nullptr;
  }
  // The lengths the mask is built for (null when the plugin does not get them).
  const std::int64_t* seqlens_q() const { return seqlens_q_ ? f_.seqlens_q : nullptr; }
  const std::int64_t* seqlens_k() const { return seqlens_k_ ? f_.seqlens_k : nullptr; }
  void check_unchanged() const {
    if (slopes_) slopes_->check_unchanged(f_.alibi_slopes, "alibi_slopes");
    if (sinks_) sinks_->check_unchanged(f_.sinks, "sinks");
    if (seqlens_q_) seqlens_q_->check_unchanged(f_.seqlens_q, "seqlens_q");
    if (seqlens_k_) seqlens_k_->check_unchanged(f_.seqlens_k, "seqlens_k");
  }
  // The backward's dsinks, into the caller's AttentionFeatures::dsinks.
  void store_dsinks() {
    if (dsinks_) std::copy(dsinks_->values().begin(), dsinks_->values().end(), f_.dsinks);
  }

 private:
  const AttentionFeatures& f_;
  std::optional<Vector1d<double>> slopes_, sinks_, dsinks_;
  std::optional<Vector1d<std::int64_t>> seqlens_q_, seqlens_k_;
  double softcap_ = 0, dropout_p_ = 0;
  std::uint64_t dropout_seed_ = 0;
};

// Refuses (std::invalid_argument) a call using a feature the plugin does not declare, and feature
// values out of range: what the registry's run_forward / run_backward check, for the 16-bit path
// that goes around the registry.
void check_declared(const Plugin& p, const char* fn, const AttentionShape& s, const AttentionFeatures& f,
                    bool backward) {
  const std::string where = std::string(fn) + " of plugin '" + p.description->name + "'";
  detail::check_features(where.c_str(), s, f, backward);
  detail::require_features(where.c_str(), s, f, p.features);
}

// The NaN outputs are filled with before a call.
template <class T>
T nan_value() {
  if constexpr (std::is_same_v<T, BFloat16>) return BFloat16{0x7fc0};
  else if constexpr (std::is_same_v<T, Float16>) return Float16{0x7e00};
  else return std::numeric_limits<T>::quiet_NaN();
}

// One forward call in dtype T with the ABI's float64 lse (B, H, Nq), row-major like the buffers.
template <class T>
void call_forward(const Plugin& p, PluginLayout layout, bool fill_nan, const AttentionShape& s, const Mask& mask,
                  double scale, const T* q, const T* k, const T* v, T* out, double* lse,
                  const AttentionOptions& options) {
  check_declared(p, "attention_forward", s, options.features, false);
  AbiFeatures features(p, s, options.features, false);
  const AbiMask abi_mask(mask, s.seq_q, s.seq_k, p.description->mask_kinds, s.batch, features.seqlens_q(),
                         features.seqlens_k());
  HostTensor<T> tq({s.batch, s.heads, s.seq_q, s.head_dim}, layout, const_cast<T*>(q));
  HostTensor<T> tk({s.batch, s.kv_heads(), s.seq_k, s.head_dim}, layout, const_cast<T*>(k));
  HostTensor<T> tv({s.batch, s.kv_heads(), s.seq_k, s.head_dim}, layout, const_cast<T*>(v));
  tq.load(q);
  tk.load(k);
  tv.load(v);
  HostTensor<T> tout({s.batch, s.heads, s.seq_q, s.head_dim}, layout, out);
  HostTensor<double> tlse({s.batch, s.heads, s.seq_q}, layout, lse);
  if (fill_nan) {
    tout.fill(nan_value<T>());
    tlse.fill(std::numeric_limits<double>::quiet_NaN());
  }
  PedAttentionForwardArgs args{};
  args.struct_size = p.forward_args_size();
  args.threads = options.threads;
  args.scale = scale;
  args.q = tq.dl();
  args.k = tk.dl();
  args.v = tv.dl();
  args.mask = abi_mask.abi();
  args.out = tout.dl();
  args.lse = tlse.dl();
  if (p.abi_version >= 2) features.set(args);
  call_plugin(p, "forward", p.description->forward, &args);
  try {
    tout.check_padding("out");
    tlse.check_padding("lse");
    tq.check_unchanged(q, "q");
    tk.check_unchanged(k, "k");
    tv.check_unchanged(v, "v");
    features.check_unchanged();
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(where(p, "forward") + e.what());
  }
  tout.store(out);
  tlse.store(lse);
}

template <class T>
void plugin_forward(const Plugin& p, PluginLayout layout, bool fill_nan, const AttentionShape& s, const Mask& mask,
                    T scale, const T* q, const T* k, const T* v, T* out, RowStatistic<T>* lse,
                    const AttentionOptions& options) {
  std::vector<double> lse64(static_cast<std::size_t>(s.batch * s.heads * s.seq_q));
  call_forward<T>(p, layout, fill_nan, s, mask, static_cast<double>(scale), q, k, v, out, lse64.data(), options);
  to_row_statistics<T>(lse64, lse);
}

// One backward call in dtype T; lse is the forward's float64 lse.
template <class T>
void call_backward(const Plugin& p, PluginLayout layout, bool fill_nan, const AttentionShape& s, const Mask& mask,
                   double scale, const T* q, const T* k, const T* v, const T* out, const double* lse, const T* dout,
                   T* dq, T* dk, T* dv, const AttentionOptions& options) {
  check_declared(p, "attention_backward", s, options.features, true);
  AbiFeatures features(p, s, options.features, true);
  const AbiMask abi_mask(mask, s.seq_q, s.seq_k, p.description->mask_kinds, s.batch, features.seqlens_q(),
                         features.seqlens_k());
  const std::vector<std::int64_t> shape_q{s.batch, s.heads, s.seq_q, s.head_dim};
  const std::vector<std::int64_t> shape_k{s.batch, s.kv_heads(), s.seq_k, s.head_dim};
  HostTensor<T> tq(shape_q, layout, const_cast<T*>(q)), tk(shape_k, layout, const_cast<T*>(k)),
      tv(shape_k, layout, const_cast<T*>(v)), tout(shape_q, layout, const_cast<T*>(out)),
      tdout(shape_q, layout, const_cast<T*>(dout));
  tq.load(q);
  tk.load(k);
  tv.load(v);
  tout.load(out);
  tdout.load(dout);
  std::vector<double> lse64(lse, lse + s.batch * s.heads * s.seq_q);
  HostTensor<double> tlse({s.batch, s.heads, s.seq_q}, layout, lse64.data());
  tlse.load(lse64.data());
  HostTensor<T> tdq(shape_q, layout, dq), tdk(shape_k, layout, dk), tdv(shape_k, layout, dv);
  if (fill_nan) {
    for (HostTensor<T>* t : {&tdq, &tdk, &tdv}) t->fill(nan_value<T>());
  }
  PedAttentionBackwardArgs args{};
  args.struct_size = p.backward_args_size();
  args.threads = options.threads;
  args.scale = scale;
  args.q = tq.dl();
  args.k = tk.dl();
  args.v = tv.dl();
  args.mask = abi_mask.abi();
  args.out = tout.dl();
  args.lse = tlse.dl();
  args.dout = tdout.dl();
  args.dq = tdq.dl();
  args.dk = tdk.dl();
  args.dv = tdv.dl();
  if (p.abi_version >= 2) features.set(args);
  call_plugin(p, "backward", p.description->backward, &args);
  try {
    tdq.check_padding("dq");
    tdk.check_padding("dk");
    tdv.check_padding("dv");
    tq.check_unchanged(q, "q");
    tk.check_unchanged(k, "k");
    tv.check_unchanged(v, "v");
    tout.check_unchanged(out, "out");
    tdout.check_unchanged(dout, "dout");
    tlse.check_unchanged(lse64.data(), "lse");
    features.check_unchanged();
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(where(p, "backward") + e.what());
  }
  tdq.store(dq);
  tdk.store(dk);
  tdv.store(dv);
  features.store_dsinks();
}

template <class T>
void plugin_backward(const Plugin& p, PluginLayout layout, bool fill_nan, const AttentionShape& s, const Mask& mask,
                     T scale, const T* q, const T* k, const T* v, const T* out, const RowStatistic<T>* lse,
                     const T* dout, T* dq, T* dk, T* dv, const AttentionOptions& options) {
  const std::vector<double> lse64 =
      from_row_statistics<T>(lse, static_cast<std::size_t>(s.batch * s.heads * s.seq_q));
  call_backward<T>(p, layout, fill_nan, s, mask, static_cast<double>(scale), q, k, v, out, lse64.data(), dout, dq,
                   dk, dv, options);
}

// ---- 16-bit dtypes: float buffers converted to T (BFloat16, Float16) and back --------------------

template <class T>
T to_reduced(float x) {
  if constexpr (std::is_same_v<T, BFloat16>) return to_bfloat16(x);
  else return to_float16(x);
}

template <class T>
std::vector<T> reduced_copy(const float* values, std::int64_t n) {
  std::vector<T> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = to_reduced<T>(values[i]);
  return out;
}

template <class T>
void widen(const std::vector<T>& values, float* out) {
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = to_float(values[i]);
}

template <class T>
ReducedPrecisionKernel reduced_kernel(std::shared_ptr<const Plugin> p, PluginLayout layout, bool fill_nan) {
  ReducedPrecisionKernel kernel;
  kernel.forward = [p, layout, fill_nan](const AttentionShape& s, const Mask& mask, double scale, const float* q,
                                         const float* k, const float* v, float* out, double* lse,
                                         const AttentionOptions& options) {
    const std::int64_t nq = s.batch * s.heads * s.seq_q * s.head_dim, nk = s.batch * s.kv_heads() * s.seq_k * s.head_dim;
    const std::vector<T> tq = reduced_copy<T>(q, nq), tk = reduced_copy<T>(k, nk), tv = reduced_copy<T>(v, nk);
    std::vector<T> tout(static_cast<std::size_t>(nq));
    call_forward<T>(*p, layout, fill_nan, s, mask, scale, tq.data(), tk.data(), tv.data(), tout.data(), lse, options);
    widen(tout, out);
  };
  if (p->description->backward == nullptr) return kernel;
  kernel.backward = [p, layout, fill_nan](const AttentionShape& s, const Mask& mask, double scale, const float* q,
                                          const float* k, const float* v, const float* out, const double* lse,
                                          const float* dout, float* dq, float* dk, float* dv,
                                          const AttentionOptions& options) {
    const std::int64_t nq = s.batch * s.heads * s.seq_q * s.head_dim, nk = s.batch * s.kv_heads() * s.seq_k * s.head_dim;
    const std::vector<T> tq = reduced_copy<T>(q, nq), tk = reduced_copy<T>(k, nk), tv = reduced_copy<T>(v, nk),
                         tout = reduced_copy<T>(out, nq), tdout = reduced_copy<T>(dout, nq);
    std::vector<T> tdq(static_cast<std::size_t>(nq)), tdk(static_cast<std::size_t>(nk)), tdv(static_cast<std::size_t>(nk));
    call_backward<T>(*p, layout, fill_nan, s, mask, scale, tq.data(), tk.data(), tv.data(), tout.data(), lse,
                     tdout.data(), tdq.data(), tdk.data(), tdv.data(), options);
    widen(tdq, dq);
    widen(tdk, dk);
    widen(tdv, dv);
  };
  return kernel;
}

// Registry name and dtype -> kernel; entries are never removed (their addresses are handed out).
std::map<std::pair<std::string, ReducedDtype>, std::unique_ptr<const ReducedPrecisionKernel>>& reduced_kernels() {
  static std::map<std::pair<std::string, ReducedDtype>, std::unique_ptr<const ReducedPrecisionKernel>> kernels;
  return kernels;
}

template <class T>
AttentionForwardFn<T> forward_adapter(std::shared_ptr<const Plugin> p, PluginLayout layout, bool fill_nan) {
  return [p, layout, fill_nan](const AttentionShape& s, const Mask& mask, T scale, const T* q, const T* k,
                               const T* v, T* out, RowStatistic<T>* lse, const AttentionOptions& options) {
    plugin_forward<T>(*p, layout, fill_nan, s, mask, scale, q, k, v, out, lse, options);
  };
}

template <class T>
AttentionBackwardFn<T> backward_adapter(std::shared_ptr<const Plugin> p, PluginLayout layout, bool fill_nan) {
  return [p, layout, fill_nan](const AttentionShape& s, const Mask& mask, T scale, const T* q, const T* k,
                               const T* v, const T* out, const RowStatistic<T>* lse, const T* dout, T* dq, T* dk,
                               T* dv, const AttentionOptions& options) {
    plugin_backward<T>(*p, layout, fill_nan, s, mask, scale, q, k, v, out, lse, dout, dq, dk, dv, options);
  };
}

std::vector<LoadedPlugin>& loaded() {
  static std::vector<LoadedPlugin> plugins;
  return plugins;
}

[[noreturn]] void fail_load(const std::string& path, const std::string& why) {
  throw std::invalid_argument("load_attention_plugin: " + path + ": " + why);
}

std::string hex(std::uint64_t value) {
  char text[32];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace

LoadedPlugin load_attention_plugin(const std::string& path, const PluginLoadOptions& options) {
  auto fail = [&](const std::string& why) { fail_load(path, why); };
  if (path.empty()) throw std::invalid_argument("load_attention_plugin: empty path");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail("no such file");
  if (options.layouts.empty()) fail("no layout asked for");
  // An absolute path: dlopen would search the library path for a name without a slash.
  const std::string absolute = std::filesystem::absolute(path, ec).string();
  void* handle = ::dlopen(absolute.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    fail(std::string("cannot be loaded: ") + (why ? why : "dlopen failed"));
  }
  ::dlerror();
  void* symbol = ::dlsym(handle, PED_ATTENTION_PLUGIN_ENTRY);
  if (symbol == nullptr) {
    ::dlclose(handle);
    fail(std::string("has no entry point '") + PED_ATTENTION_PLUGIN_ENTRY +
         "' (export it with C linkage: extern \"C\" in C++)");
  }
  PedAttentionPluginEntryFn entry;
  static_assert(sizeof entry == sizeof symbol);
  std::memcpy(&entry, &symbol, sizeof entry);
  const PedAttentionPlugin* d = entry(kHostAbiVersion);
  // From here on the library stays loaded, even on failure: its code may have registered
  // handlers or started threads that a dlclose would leave dangling.
  if (d == nullptr) fail(std::string(PED_ATTENTION_PLUGIN_ENTRY) + " returned NULL");
  if (d->abi_version < 1 || d->abi_version > kHostAbiVersion) {
    fail("speaks attention plugin ABI version " + std::to_string(d->abi_version) +
         ", this harness speaks versions 1 and 2 (rebuild it against this pedestrian's attention_plugin.h)");
  }
  if (d->struct_size < kVersion1PluginSize) {
    fail("struct_size = " + std::to_string(d->struct_size) + " is smaller than version 1's PedAttentionPlugin (" +
         std::to_string(kVersion1PluginSize) + " bytes)");
  }
  if (d->name == nullptr) fail("name is NULL");
  const std::size_t name_length = ::strnlen(d->name, 64);
  if (name_length == 0 || name_length > 48) fail("name is empty or longer than 48 characters");
  const std::string name(d->name, name_length);
  if (d->dtypes == 0 || (d->dtypes & ~kKnownDtypes) != 0) {
    fail("plugin '" + name + "': dtypes = " + hex(d->dtypes) +
         ", expected one or more of PED_DTYPE_FLOAT32, PED_DTYPE_FLOAT64, PED_DTYPE_BFLOAT16, PED_DTYPE_FLOAT16 "
         "(0x1, 0x2, 0x4, 0x8)");
  }
  // The float and double checks and the benchmarks run through the registry of implementations, whose
  // entries need a float or double forward; the 16-bit dtypes are checked next to them.
  if ((d->dtypes & (PED_DTYPE_FLOAT32 | PED_DTYPE_FLOAT64)) == 0) {
    fail("plugin '" + name + "': dtypes = " + hex(d->dtypes) +
         " declares no PED_DTYPE_FLOAT32 or PED_DTYPE_FLOAT64; this harness needs one of them next to the 16-bit dtypes");
  }
  if (d->mask_kinds == 0 || (d->mask_kinds & ~kKnownMaskKinds) != 0) {
    fail("plugin '" + name + "': mask_kinds = " + hex(d->mask_kinds) + ", expected bits (1 << PED_MASK_*) within " +
         hex(kKnownMaskKinds));
  }
  if (d->forward == nullptr) fail("plugin '" + name + "': forward is NULL");
  // Features: none in version 1; in version 2 the bits of kAbiFeatures, each named when unknown.
  std::uint32_t features = 0;
  std::vector<std::string> feature_names;
  if (d->abi_version == 1 && d->features != 0) {
    fail("plugin '" + name + "': features = " + hex(d->features) +
         " in an ABI version 1 description; version 1 defines no features (describe the plugin as version 2 to "
         "declare them)");
  }
  std::uint64_t unknown = d->features;
  for (const AbiFeature& f : kAbiFeatures) {
    if ((d->features & f.bit) == 0) continue;
    unknown &= ~f.bit;
    features |= attention_feature_bit(f.feature);
    feature_names.emplace_back(to_string(f.feature));
  }
  if (unknown != 0) {
    std::string known;
    for (const AbiFeature& f : kAbiFeatures) known += (known.empty() ? "" : ", ") + std::string(f.macro);
    const int bit = __builtin_ctzll(unknown);
    fail("plugin '" + name + "': features = " + hex(d->features) + " holds bit " + std::to_string(bit) + " (" +
         hex(std::uint64_t{1} << bit) + (std::uint64_t{1} << bit == PED_FEATURE_ADDITIVE_BIAS
                                              ? ", PED_FEATURE_ADDITIVE_BIAS, reserved"
                                              : "") +
         "), which ABI version " + std::to_string(d->abi_version) +
         " does not define; this harness knows " + known);
  }

  LoadedPlugin info;
  info.path = path;
  info.name = name;
  info.description = d->description ? std::string(d->description, ::strnlen(d->description, 200)) : "";
  info.float32 = (d->dtypes & PED_DTYPE_FLOAT32) != 0;
  info.float64 = (d->dtypes & PED_DTYPE_FLOAT64) != 0;
  info.bfloat16 = (d->dtypes & PED_DTYPE_BFLOAT16) != 0;
  info.float16 = (d->dtypes & PED_DTYPE_FLOAT16) != 0;
  info.backward = d->backward != nullptr;
  info.abi_version = d->abi_version;
  info.features = feature_names;
  for (std::uint32_t kind = 0; kind <= PED_MASK_ELEMENTS; ++kind) {
    if (d->mask_kinds & (1u << kind)) info.mask_kinds.push_back(kAbiMaskNames[kind]);
  }

  const auto plugin = std::make_shared<const Plugin>(
      Plugin{.path = path, .description = d, .abi_version = d->abi_version, .features = features});
  std::vector<AttentionImpl> impls;
  std::vector<std::tuple<std::string, ReducedDtype, PluginLayout>> reduced;
  for (PluginLayout layout : options.layouts) {
    AttentionImpl impl;
    impl.name = layout == PluginLayout::contiguous ? name : name + "[" + to_string(layout) + "]";
    impl.origin = path;
    impl.mask_kinds = registry_mask_kinds(d->mask_kinds);
    impl.features = features;
    impl.isolate = true;
    const bool fill = options.fill_outputs_with_nan;
    if (info.float32) impl.forward_f32 = forward_adapter<float>(plugin, layout, fill);
    if (info.float64) impl.forward_f64 = forward_adapter<double>(plugin, layout, fill);
    if (info.backward && info.float32) impl.backward_f32 = backward_adapter<float>(plugin, layout, fill);
    if (info.backward && info.float64) impl.backward_f64 = backward_adapter<double>(plugin, layout, fill);
    if (info.bfloat16) reduced.emplace_back(impl.name, ReducedDtype::bfloat16, layout);
    if (info.float16) reduced.emplace_back(impl.name, ReducedDtype::float16, layout);
    if (find_attention_impl(impl.name) != nullptr) {
      fail("plugin name '" + impl.name + "' is already registered (from " + attention_impl(impl.name).origin + ")");
    }
    impls.push_back(std::move(impl));
  }
  for (AttentionImpl& impl : impls) {
    info.variants.push_back(impl.name);
    try {
      register_attention_impl(std::move(impl));
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
  }
  for (const auto& [variant, dtype, layout] : reduced) {
    const bool fill = options.fill_outputs_with_nan;
    reduced_kernels()[{variant, dtype}] = std::make_unique<const ReducedPrecisionKernel>(
        dtype == ReducedDtype::bfloat16 ? reduced_kernel<BFloat16>(plugin, layout, fill)
                                        : reduced_kernel<Float16>(plugin, layout, fill));
  }
  loaded().push_back(info);
  return info;
}

const char* to_string(ReducedDtype dtype) { return dtype == ReducedDtype::bfloat16 ? "bfloat16" : "float16"; }

const ReducedPrecisionKernel* find_reduced_precision_kernel(const std::string& variant, ReducedDtype dtype) {
  const auto it = reduced_kernels().find({variant, dtype});
  return it == reduced_kernels().end() ? nullptr : it->second.get();
}

std::string describe(const LoadedPlugin& p) {
  std::string dtypes;
  for (const auto& [declared, dtype] : {std::pair{p.float32, "float32"}, std::pair{p.float64, "float64"},
                                        std::pair{p.bfloat16, "bfloat16"}, std::pair{p.float16, "float16"}}) {
    if (declared) dtypes += (dtypes.empty() ? "" : ", ") + std::string(dtype);
  }
  std::string masks;
  for (const std::string& m : p.mask_kinds) masks += (masks.empty() ? "" : ", ") + m;
  std::string variants;
  for (const std::string& v : p.variants) variants += (variants.empty() ? "" : ", ") + v;
  std::string features;
  for (const std::string& f : p.features) features += (features.empty() ? "" : ", ") + f;
  return p.name + " (" + dtypes + "; masks " + masks + "; " + (p.backward ? "forward and backward" : "forward only") +
         "; ABI version " + std::to_string(p.abi_version) + ", features " + (features.empty() ? "none" : features) +
         ") from " + p.path + " as variant" + (p.variants.size() > 1 ? "s " : " ") + variants;
}

const std::vector<LoadedPlugin>& loaded_plugins() { return loaded(); }

}  // namespace ped::plugin
