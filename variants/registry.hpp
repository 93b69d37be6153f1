// The registry of attention implementations: every kernel verify, bench and the tests run is one
// entry, found by name. The four built-ins of this folder register in builtin_impls.cpp (one line
// each); out-of-tree kernels loaded through the plugin ABI (plugin_host/) register at run time.
//
// B batch, H heads, Nq query tokens, Nk key tokens, d head dim, s scale. An implementation takes
// the contiguous row-major buffers of attention.hpp: q (B, H, Nq, d), k, v (B, H, Nk, d),
// out (B, H, Nq, d), the row statistics (B, H, Nq), dout, dq (B, H, Nq, d), dk, dv (B, H, Nk, d).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "variants/attention.hpp"
#include "core/mask.hpp"

namespace ped {

// The row statistics a forward hands to its backward, one per query row (B, H, Nq), in the form
// attention.hpp's kernels keep them: RowStats<T> {max, inv_sum}, whose lse() is log sum_j exp(S_ij)
// (-inf for a row that sees no key). Code that keeps them in another form (the plugin ABI's float64
// lse) converts at its boundary; this alias is the one place that names the in-tree form.
template <class T>
using RowStatistic = RowStats<T>;

template <class T>
using AttentionForwardFn =
    std::function<void(const AttentionShape&, const Mask&, T scale, const T* q, const T* k, const T* v, T* out,
                       RowStatistic<T>* lse, const AttentionOptions&)>;
// Overwrites dq, dk, dv with the gradients of sum(dout o out); out and lse are its forward's results.
template <class T>
using AttentionBackwardFn =
    std::function<void(const AttentionShape&, const Mask&, T scale, const T* q, const T* k, const T* v,
                       const T* out, const RowStatistic<T>* lse, const T* dout, T* dq, T* dk, T* dv,
                       const AttentionOptions&)>;

// Bit of a Mask::Kind in AttentionImpl::mask_kinds.
constexpr std::uint32_t mask_kind_bit(Mask::Kind kind) { return std::uint32_t{1} << static_cast<unsigned>(kind); }
inline constexpr std::uint32_t kAllMaskKinds = (mask_kind_bit(Mask::Kind::union_of) << 1) - 1;

// One implementation, as a value. A dtype is supported when its forward is set; the backward is
// optional (then only forward checks run and no backward is benchmarked).
struct AttentionImpl {
  std::string name;                  // [a-z][a-z0-9_]*, at most 48 characters, optionally "name[layout]"
  std::string origin = "built-in";   // "built-in", or the shared library the implementation came from
  std::uint32_t mask_kinds = kAllMaskKinds;  // the Mask::Kind values it accepts (bits of mask_kind_bit)
  // The AttentionFeatures it implements (bits of attention_feature_bit, attention.hpp): a call using
  // any other is refused by run_forward / run_backward, and verify and bench do not run it there.
  std::uint32_t features = 0;
  AttentionForwardFn<float> forward_f32;
  AttentionForwardFn<double> forward_f64;
  AttentionBackwardFn<float> backward_f32;   // empty: no float backward
  AttentionBackwardFn<double> backward_f64;  // empty: no double backward
  // Bytes of working memory above its inputs, outputs and gradients for one call (forward, or
  // forward and backward when `backward`), with elements of element_bytes bytes; bench's memory
  // budget adds it. Empty: not known, counted as 0.
  std::function<double(const AttentionShape&, std::size_t element_bytes, int threads, bool backward)> working_bytes;
  // Code from outside this project (a plugin): verify runs its checks in a child process, so that
  // a crash is reported as a failed check instead of ending the run.
  bool isolate = false;
  // It adds the time of its phases to AttentionOptions::phases (attention.hpp): bench then reports
  // where its time goes.
  bool times_phases = false;
  // Its time per FLOP relative to the tiled kernels (flash, sparse: 1), for planning: bench's cost
  // model balances shards with it (bench_config.hpp). 1 where not known (plugins).
  double relative_cost = 1.0;

  template <class T>
  bool supports() const {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
    if constexpr (std::is_same_v<T, float>) return static_cast<bool>(forward_f32);
    return static_cast<bool>(forward_f64);
  }
  bool supports(const Mask& mask) const { return (mask_kinds & mask_kind_bit(mask.kind())) != 0; }
  // Whether it implements every feature in `bits` (attention_feature_bit values).
  bool supports_features(std::uint32_t bits) const { return (bits & ~features) == 0; }
  template <class T>
  bool has_backward() const {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
    if constexpr (std::is_same_v<T, float>) return static_cast<bool>(backward_f32);
    return static_cast<bool>(backward_f64);
  }
};

// Calls impl's forward after the checks attention_forward makes (sizes, pointers, scale, options,
// mask) and after checking that impl supports T and the mask's kind; every refusal throws
// std::invalid_argument naming the function, the implementation and the value.
template <class T>
void run_forward(const AttentionImpl& impl, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                 const T* k, const T* v, T* out, RowStatistic<T>* lse, const AttentionOptions& options = {});
// Likewise for the backward (which impl must have for T).
template <class T>
void run_backward(const AttentionImpl& impl, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                  const T* k, const T* v, const T* out, const RowStatistic<T>* lse, const T* dout, T* dq, T* dk,
                  T* dv, const AttentionOptions& options = {});

// Adds impl to the registry. Throws std::invalid_argument when the name is malformed or taken, or
// when it has no forward at all. Entries are never removed, and their addresses stay valid.
void register_attention_impl(AttentionImpl impl);

// Every registered implementation in registration order: the built-ins first.
std::vector<const AttentionImpl*> attention_impls();
std::vector<std::string> attention_impl_names();
// nullptr when no implementation has that name.
const AttentionImpl* find_attention_impl(const std::string& name);
// Throws std::invalid_argument naming the unknown name and listing the registered ones.
const AttentionImpl& attention_impl(const std::string& name);

// The built-in implementations (builtin_impls.cpp), in the order they register.
std::vector<AttentionImpl> builtin_attention_impls();

}  // namespace ped
