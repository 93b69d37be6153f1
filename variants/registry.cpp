// The registry of attention implementations and the checked calls into them.
#include "variants/registry.hpp"

#include <deque>
#include <mutex>

#include "variants/common.hpp"
#include "variants/features.hpp"
#include "variants/kernels.hpp"

namespace ped {

namespace {

using detail::throw_invalid;

// Stable addresses (a deque never moves its elements on push_back); the built-ins first.
struct Registry {
  std::mutex mutex;
  std::deque<AttentionImpl> impls;
};

bool valid_base_name(const std::string& s) {
  if (s.empty() || s.size() > 48 || s[0] < 'a' || s[0] > 'z') return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// "name" or "name[layout]", name as valid_base_name, layout [a-z]+.
bool valid_name(const std::string& s) {
  const std::size_t open = s.find('[');
  if (open == std::string::npos) return valid_base_name(s);
  if (s.back() != ']' || open + 2 >= s.size()) return false;
  for (std::size_t i = open + 1; i + 1 < s.size(); ++i) {
    if (s[i] < 'a' || s[i] > 'z') return false;
  }
  return valid_base_name(s.substr(0, open));
}

void add(std::deque<AttentionImpl>& impls, AttentionImpl impl) {
  constexpr const char* fn = "register_attention_impl";
  if (!valid_name(impl.name)) {
    throw_invalid(fn, "name '", impl.name,
                  "' is not [a-z][a-z0-9_]* of at most 48 characters (optionally followed by [layout])");
  }
  if (impl.name.starts_with("libtorch")) {
    throw_invalid(fn, "name '", impl.name, "' starts with 'libtorch', reserved for the LibTorch baselines");
  }
  for (const AttentionImpl& other : impls) {
    if (other.name == impl.name) {
      throw_invalid(fn, "name '", impl.name, "' is already registered (from ", other.origin, ")");
    }
  }
  if (!impl.forward_f32 && !impl.forward_f64) throw_invalid(fn, "'", impl.name, "' has no forward for any dtype");
  if ((impl.backward_f32 && !impl.forward_f32) || (impl.backward_f64 && !impl.forward_f64)) {
    throw_invalid(fn, "'", impl.name, "' has a backward for a dtype without a forward");
  }
  if ((impl.mask_kinds & kAllMaskKinds) == 0) throw_invalid(fn, "'", impl.name, "' accepts no mask kind");
  impls.push_back(std::move(impl));
}

Registry& registry() {
  static Registry* r = [] {
    auto* init = new Registry;  // never destroyed: entries are used until the process ends
    for (AttentionImpl& impl : builtin_attention_impls()) add(init->impls, std::move(impl));
    return init;
  }();
  return *r;
}

template <class T>
const char* dtype_name() {
  return std::is_same_v<T, float> ? "float" : "double";
}

template <class T>
void check_support(const char* fn, const AttentionImpl& impl, const Mask& mask) {
  if (!impl.supports<T>()) throw_invalid(fn, "implementation '", impl.name, "' has no ", dtype_name<T>(), " kernel");
  if (!impl.supports(mask)) {
    throw_invalid(fn, "implementation '", impl.name, "' does not accept mask ", mask.name());
  }
}

}  // namespace

template <class T>
void run_forward(const AttentionImpl& impl, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                 const T* k, const T* v, T* out, RowStatistic<T>* lse, const AttentionOptions& options) {
  constexpr const char* fn = "attention_forward";
  detail::check_forward_args(fn, shape, mask, scale, q, k, v, out, lse, options);
  check_support<T>(fn, impl, mask);
  detail::require_features((std::string(fn) + " of '" + impl.name + "'").c_str(), shape, options.features, impl.features);
  if constexpr (std::is_same_v<T, float>) {
    impl.forward_f32(shape, mask, scale, q, k, v, out, lse, options);
  } else {
    impl.forward_f64(shape, mask, scale, q, k, v, out, lse, options);
  }
}

template <class T>
void run_backward(const AttentionImpl& impl, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                  const T* k, const T* v, const T* out, const RowStatistic<T>* lse, const T* dout, T* dq, T* dk,
                  T* dv, const AttentionOptions& options) {
  constexpr const char* fn = "attention_backward";
  detail::check_backward_args(fn, shape, mask, scale, q, k, v, out, lse, dout, dq, dk, dv, options);
  check_support<T>(fn, impl, mask);
  detail::require_features((std::string(fn) + " of '" + impl.name + "'").c_str(), shape, options.features, impl.features);
  if (!impl.has_backward<T>()) {
    throw_invalid(fn, "implementation '", impl.name, "' has no ", dtype_name<T>(), " backward");
  }
  if constexpr (std::is_same_v<T, float>) {
    impl.backward_f32(shape, mask, scale, q, k, v, out, lse, dout, dq, dk, dv, options);
  } else {
    impl.backward_f64(shape, mask, scale, q, k, v, out, lse, dout, dq, dk, dv, options);
  }
}

template void run_forward<float>(const AttentionImpl&, const AttentionShape&, const Mask&, float, const float*,
                                 const float*, const float*, float*, RowStatistic<float>*, const AttentionOptions&);
template void run_forward<double>(const AttentionImpl&, const AttentionShape&, const Mask&, double, const double*,
                                  const double*, const double*, double*, RowStatistic<double>*,
                                  const AttentionOptions&);
template void run_backward<float>(const AttentionImpl&, const AttentionShape&, const Mask&, float, const float*,
                                  const float*, const float*, const float*, const RowStatistic<float>*,
                                  const float*, float*, float*, float*, const AttentionOptions&);
template void run_backward<double>(const AttentionImpl&, const AttentionShape&, const Mask&, double, const double*,
                                   const double*, const double*, const double*, const RowStatistic<double>*,
                                   const double*, double*, double*, double*, const AttentionOptions&);

void register_attention_impl(AttentionImpl impl) {
  Registry& r = registry();
  const std::lock_guard lock(r.mutex);
  add(r.impls, std::move(impl));
}

std::vector<const AttentionImpl*> attention_impls() {
  Registry& r = registry();
  const std::lock_guard lock(r.mutex);
  std::vector<const AttentionImpl*> out;
  for (const AttentionImpl& impl : r.impls) out.push_back(&impl);
  return out;
}

std::vector<std::string> attention_impl_names() {
  std::vector<std::string> names;
  for (const AttentionImpl* impl : attention_impls()) names.push_back(impl->name);
  return names;
}

const AttentionImpl* find_attention_impl(const std::string& name) {
  for (const AttentionImpl* impl : attention_impls()) {
    if (impl->name == name) return impl;
  }
  return nullptr;
}

const AttentionImpl& attention_impl(const std::string& name) {
  if (const AttentionImpl* impl = find_attention_impl(name)) return *impl;
  std::string known;
  for (const std::string& n : attention_impl_names()) known += (known.empty() ? "" : ", ") + n;
  throw_invalid("attention_impl", "unknown attention implementation '", name, "', registered: ", known);
}

}  // namespace ped
