#include "twins/masks.hpp"

#include <algorithm>
#include <limits>
#include <vector>

namespace ped::twin {

at::Tensor visible_mask(const Mask& mask, std::int64_t seq_q, std::int64_t seq_k) {
  mask.validate("twin::visible_mask", seq_q, seq_k);
  std::vector<std::uint8_t> host(static_cast<std::size_t>(seq_q * seq_k), 0);
  std::vector<KeyInterval> keys;
  for (std::int64_t i = 0; i < seq_q; ++i) {
    mask.row_intervals(i, seq_q, seq_k, keys);
    std::uint8_t* row = host.data() + i * seq_k;
    for (const KeyInterval& iv : keys) std::fill(row + iv.lo, row + iv.hi, std::uint8_t{1});
  }
  return at::from_blob(host.data(), {seq_q, seq_k}, at::kByte).to(at::kBool);  // .to copies: no dangling view
}

at::Tensor additive_mask(const Mask& mask, std::int64_t seq_q, std::int64_t seq_k, at::ScalarType dtype) {
  return at::zeros({seq_q, seq_k}, at::TensorOptions().dtype(dtype))
      .masked_fill(visible_mask(mask, seq_q, seq_k).logical_not(), -std::numeric_limits<double>::infinity());
}

}  // namespace ped::twin
