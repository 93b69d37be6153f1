#include "plugin_host/host_tensor.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>

namespace ped::plugin {

namespace {

// Elements of padding before the first element of a strided view (byte_offset = 2 * sizeof(T)).
constexpr std::int64_t kLeadElements = 2;

// A quiet NaN with a payload no arithmetic produces: padding that still holds it was not written.
template <class T>
T padding_value();
template <>
float padding_value<float>() {
  const std::uint32_t bits = 0x7FE5A5A5u;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
template <>
double padding_value<double>() {
  const std::uint64_t bits = 0x7FFDA5A5A5A5A5A5ull;
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// The 16-bit dtypes: a quiet NaN with a payload no conversion of a float NaN produces (those
// carry the float's upper fraction bits, and the harness's own NaNs have none).
template <>
BFloat16 padding_value<BFloat16>() {
  return {0x7fa5};
}
template <>
Float16 padding_value<Float16>() {
  return {0x7e5a};
}

template <class T>
DLDataType dl_dtype() {
  if constexpr (std::is_same_v<T, BFloat16>) return {static_cast<std::uint8_t>(kDLBfloat), 16, 1};
  return {static_cast<std::uint8_t>(kDLFloat), static_cast<std::uint8_t>(8 * sizeof(T)), 1};
}

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

}  // namespace

const char* to_string(PluginLayout layout) { return layout == PluginLayout::strided ? "strided" : "contiguous"; }

PluginLayout parse_plugin_layout(const std::string& name) {
  if (name == "contiguous") return PluginLayout::contiguous;
  if (name == "strided") return PluginLayout::strided;
  throw std::invalid_argument("parse_plugin_layout: unknown layout '" + name + "', expected contiguous or strided");
}

template <class T>
HostTensor<T>::HostTensor(std::vector<std::int64_t> shape, PluginLayout layout, T* external)
    : shape_(std::move(shape)), strides_(shape_.size()) {
  const std::size_t rank = shape_.size();
  if (rank != 3 && rank != 4) throw std::logic_error("HostTensor: rank " + std::to_string(rank) + ", expected 3 or 4");
  for (std::int64_t n : shape_) elements_ *= n;
  if (layout == PluginLayout::contiguous) {
    std::int64_t stride = 1;
    for (std::size_t k = rank; k-- > 0;) {
      strides_[k] = stride;
      stride *= shape_[k];
    }
    first_ = external;
  } else {
    // Stored dimension k holds logical dimension perm[k]: the two middle ones swapped, so (B, H, N, d)
    // is stored as (B, N, H, d + 3) and (B, H, N) as (B, N, H + 1).
    const std::vector<std::size_t> perm = rank == 4 ? std::vector<std::size_t>{0, 2, 1, 3}
                                                    : std::vector<std::size_t>{0, 2, 1};
    std::vector<std::int64_t> stored(rank);
    for (std::size_t k = 0; k < rank; ++k) stored[k] = shape_[perm[k]];
    stored[rank - 1] += rank == 4 ? 3 : 1;
    std::int64_t stride = 1;
    for (std::size_t k = rank; k-- > 0;) {
      strides_[perm[k]] = stride;
      stride *= stored[k];
    }
    lead_ = kLeadElements;
    owned_ = true;
    storage_.assign(static_cast<std::size_t>(lead_ + stride), padding_value<T>());
    first_ = storage_.data() + lead_;
  }
  dl_.data = owned_ ? static_cast<void*>(storage_.data()) : static_cast<void*>(first_);
  dl_.device = {kDLCPU, 0};
  dl_.ndim = static_cast<int>(rank);
  dl_.dtype = dl_dtype<T>();
  dl_.shape = shape_.data();
  dl_.strides = strides_.data();
  dl_.byte_offset = static_cast<std::uint64_t>(lead_) * sizeof(T);
}

template <class T>
template <class Visit>
void HostTensor<T>::for_each_element(Visit&& visit) const {
  const bool four = shape_.size() == 4;
  const std::int64_t n0 = shape_[0], n1 = shape_[1], n2 = shape_[2], n3 = four ? shape_[3] : 1;
  const std::int64_t s3 = four ? strides_[3] : 0;
  std::int64_t index = 0;
  for (std::int64_t a = 0; a < n0; ++a) {
    for (std::int64_t b = 0; b < n1; ++b) {
      for (std::int64_t c = 0; c < n2; ++c) {
        const std::int64_t base = a * strides_[0] + b * strides_[1] + c * strides_[2];
        for (std::int64_t e = 0; e < n3; ++e) visit(index++, base + e * s3);
      }
    }
  }
}

template <class T>
void HostTensor<T>::load(const T* source) {
  if (!owned_ && source == first_) return;
  for_each_element([&](std::int64_t i, std::int64_t at) { first_[at] = source[i]; });
}

template <class T>
void HostTensor<T>::fill(T value) {
  for_each_element([&](std::int64_t, std::int64_t at) { first_[at] = value; });
}

template <class T>
void HostTensor<T>::store(T* target) const {
  if (!owned_ && target == first_) return;
  for_each_element([&](std::int64_t i, std::int64_t at) { target[i] = first_[at]; });
}

template <class T>
void HostTensor<T>::check_padding(const std::string& what) const {
  if (!owned_) return;
  std::vector<char> is_element(storage_.size(), 0);
  for_each_element([&](std::int64_t, std::int64_t at) { is_element[static_cast<std::size_t>(lead_ + at)] = 1; });
  std::size_t changed = 0, first_changed = 0;
  for (std::size_t i = 0; i < storage_.size(); ++i) {
    if (!is_element[i] && !same_bits(storage_[i], padding_value<T>())) {
      if (changed++ == 0) first_changed = i;
    }
  }
  if (changed) {
    throw std::runtime_error("wrote outside the elements of " + what + ": " + std::to_string(changed) +
                             " padding elements of its strided view changed, the first at element offset " +
                             std::to_string(static_cast<std::int64_t>(first_changed) - lead_) +
                             " from the view's first element (shape, strides or byte_offset not honoured)");
  }
}

template <class T>
void HostTensor<T>::check_unchanged(const T* source, const std::string& what) const {
  if (!owned_) return;
  std::int64_t changed = 0;
  for_each_element([&](std::int64_t i, std::int64_t at) { changed += same_bits(first_[at], source[i]) ? 0 : 1; });
  if (changed) {
    throw std::runtime_error("wrote into the input " + what + ": " + std::to_string(changed) + " elements changed");
  }
}

template class HostTensor<float>;
template class HostTensor<double>;
template class HostTensor<BFloat16>;
template class HostTensor<Float16>;

}  // namespace ped::plugin
