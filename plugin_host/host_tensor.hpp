// The tensors the harness hands to a plugin as DLPack DLTensors (include/pedestrian/attention_plugin.h),
// in one of two layouts:
//   contiguous  compact row-major, over the caller's buffer (no copy)
//   strided     a view into a buffer of the harness's own, with the two middle dimensions
//               transposed, the innermost stored dimension padded and the first element
//               `kLeadElements` elements past `data` (byte_offset), so that a kernel that ignores
//               shape, strides or byte_offset reads padding or misplaced values and fails
// Padding holds a NaN with a recognisable payload; after a call, a changed padding element means
// the kernel wrote outside its view.
#pragma once

#include <dlpack/dlpack.h>

#include <cstdint>
#include <string>
#include <vector>

#include "plugin_host/reduced_float.hpp"

namespace ped::plugin {

enum class PluginLayout : std::uint8_t { contiguous, strided };
const char* to_string(PluginLayout layout);
// "contiguous" or "strided"; throws std::invalid_argument naming the unknown name.
PluginLayout parse_plugin_layout(const std::string& name);

template <class T>
class HostTensor {
 public:
  // shape: (B, H, N, d) or (B, H, N). Contiguous: a view of `external` (row-major, not owned,
  // which must outlive this object; const inputs are passed through const_cast and never written
  // by the harness). Strided: storage of its own; `external` is ignored.
  HostTensor(std::vector<std::int64_t> shape, PluginLayout layout, T* external);
  HostTensor(const HostTensor&) = delete;
  HostTensor& operator=(const HostTensor&) = delete;

  DLTensor* dl() { return &dl_; }
  const DLTensor* dl() const { return &dl_; }
  std::int64_t elements() const { return elements_; }

  // Copies the row-major `source` into the view's elements (a no-op when the view is `source`).
  void load(const T* source);
  // Sets every element of the view to `value` (outputs get NaN, so unwritten elements show).
  void fill(T value);
  // Copies the view's elements, row-major, to `target` (a no-op when the view is `target`).
  void store(T* target) const;
  // Throws std::runtime_error naming `what` when a padding element changed (strided layout only).
  void check_padding(const std::string& what) const;
  // Throws std::runtime_error naming `what` when an element differs bitwise from the row-major
  // `source` (strided layout only: an input the kernel wrote into).
  void check_unchanged(const T* source, const std::string& what) const;

 private:
  template <class Visit>
  void for_each_element(Visit&& visit) const;  // visit(row-major index, storage offset)

  std::vector<std::int64_t> shape_, strides_;
  std::int64_t elements_ = 1;
  std::int64_t lead_ = 0;
  std::vector<T> storage_;
  T* first_ = nullptr;  // element 0
  bool owned_ = false;
  DLTensor dl_{};
};

extern template class HostTensor<float>;
extern template class HostTensor<double>;
extern template class HostTensor<BFloat16>;
extern template class HostTensor<Float16>;

}  // namespace ped::plugin
