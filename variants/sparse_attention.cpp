// Block-sparse attention. B batch, H heads, Nq/Nk query/key tokens, d head dim, s scale,
// Bs = options.block_size (default 64) the side of the square blocks.
//
// Work is proportional to the non-empty blocks of the mask's (Bs, Bs) block layout: empty blocks are
// never visited, full blocks are computed without any element test and partial blocks apply the
// element mask. The driver (shared with flash, which uses larger rectangular tiles) is in
// variants/tiled_attention.hpp; the per-block math in variants/tile_ops.hpp.
// Features (AttentionFeatures): grouped-query heads and per-sequence lengths by slicing
// (variants/features.hpp); the soft-cap and ALiBi on every computed block (full blocks too) before
// the element mask of partial blocks, sinks as the starting point of each row's online softmax,
// dropout on the block's P after its row sums, all recomputed the same way in backward
// (variants/tiled_attention.hpp says how each one is applied).
#include "variants/sparse_attention.hpp"

#include "variants/features.hpp"
#include "variants/kernels.hpp"
#include "variants/nonfinite.hpp"
#include "variants/tiled_attention.hpp"

namespace ped {

template <class T>
void sparse_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                              const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options) {
  detail::check_forward_args("sparse_attention_forward", shape, mask, scale, q, k, v, out, stats, options);
  const int threads = detail::resolve_threads(options);
  detail::require_features("sparse_attention_forward", shape, options.features, kAllAttentionFeatures);
  detail::forward_features(
      "sparse_attention_forward", shape, mask, q, k, v, out, stats, options,
      [&](const AttentionShape& slice, const T* sq, const T* sk, const T* sv, T* sout, RowStats<T>* sstats,
          const detail::ScoreMods& mods) {
        detail::forward_with_nonfinite(slice, mask, sq, sk, sv, sout, sstats, threads,
                                       [&](const T* qf, const T* kf, const T* vf) { detail::tiled_attention_forward(slice, mask, scale, qf, kf, vf, sout, sstats, options.block_size, options.block_size, threads, options.phases, mods); });
      });
}

template <class T>
void sparse_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                               const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv,
                               const AttentionOptions& options) {
  detail::check_backward_args("sparse_attention_backward", shape, mask, scale, q, k, v, out, stats, dout, dq, dk, dv,
                              options);
  const int threads = detail::resolve_threads(options);
  detail::require_features("sparse_attention_backward", shape, options.features, kAllAttentionFeatures);
  detail::backward_features(
      "sparse_attention_backward", shape, mask, q, k, v, out, stats, dout, dq, dk, dv, options,
      [&](const AttentionShape& slice, const T* sq, const T* sk, const T* sv, const T* sout, const RowStats<T>* sstats,
          const T* sdout, T* sdq, T* sdk, T* sdv, const detail::ScoreMods& mods) {
        detail::backward_with_nonfinite(
            slice, mask, sq, sk, sv, sout, sstats, sdout, sdq, sdk, sdv, threads,
            [&](const T* qf, const T* kf, const T* vf, const T* of, const RowStats<T>* sf, const T* gf) { detail::tiled_attention_backward(slice, mask, scale, qf, kf, vf, of, sf, gf, sdq, sdk, sdv, options.block_size, options.block_size, threads, options.phases, mods); });
      });
}

#define PED_INSTANTIATE(T)                                                                                            \
  template void sparse_attention_forward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*, T*,  \
                                            RowStats<T>*, const AttentionOptions&);                                   \
  template void sparse_attention_backward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*,     \
                                             const T*, const RowStats<T>*, const T*, T*, T*, T*, const AttentionOptions&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped
