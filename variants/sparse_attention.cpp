// Block-sparse attention. B batch, H heads, Nq/Nk query/key tokens, d head dim, s scale,
// Bs = options.block_size (default 64) the side of the square blocks.
//
// The mask's block layout at (Bs, Bs) is computed once per call, with the non-empty blocks listed
// per block row and per block column (CSR). Work is proportional to the non-empty blocks only:
// empty blocks are never visited, full blocks are computed without any element test and partial
// blocks apply the element mask. The per-block math is the flash kernel's (online softmax
// forward, P recomputed from lse in backward), see variants/tile_ops.hpp.
// Forward: parallel over (b, h, block row), walking that row's non-empty blocks.
// Backward: one pass per (b, h) when threads == 1 or B H >= 2 threads (block columns outer, their
// non-empty block rows inner); otherwise dK, dV per (b, h, block column) over its non-empty rows,
// then dQ per (b, h, block row) over its non-empty columns. Every gradient row receives the same
// block products in the same order either way: bitwise identical for any thread count.
#include "variants/sparse_attention.hpp"

#include <algorithm>
#include <limits>
#include <vector>

#include "variants/tile_ops.hpp"

namespace ped {

template <class T>
void sparse_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                              const T* v, T* out, T* lse, const AttentionOptions& options) {
  detail::check_forward_args("sparse_attention_forward", shape, mask, scale, q, k, v, out, lse, options);
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t qStrideBH = nq * d, kStrideBH = nk * d, lseStrideBH = nq;
  const std::int64_t bs = options.block_size;
  const BlockLayout layout = mask.block_layout(nq, nk, bs, bs);
  const std::int64_t bq = std::min(bs, nq), bk = std::min(bs, nk);  // scratch extents
  const int threads = detail::resolve_threads(options);
  detail::BlasSingleThreaded blas1;

#pragma omp parallel num_threads(detail::team(threads, bh * layout.rows))
  {
    detail::Scratch<T> sbuf(static_cast<std::size_t>(bq * bk));  // (Bs, Bs) S, then P
    std::vector<T> m(static_cast<std::size_t>(bq));              // (Bs) running row max
    std::vector<double> l(static_cast<std::size_t>(bq));         // (Bs) running row sum
#pragma omp for schedule(dynamic)
    for (std::int64_t unit = 0; unit < bh * layout.rows; ++unit) {
      const std::int64_t x = unit / layout.rows, br = unit % layout.rows;
      const std::int64_t i0 = br * bs, rows = std::min(bs, nq - i0);
      T* acc = out + x * qStrideBH + i0 * d;  // (rows, d) the output rows double as accumulator
      std::fill(acc, acc + rows * d, T{0});
      std::fill(m.begin(), m.end(), -std::numeric_limits<T>::infinity());
      std::fill(l.begin(), l.end(), 0.0);
      for (std::int64_t e = layout.row_ptr[br]; e < layout.row_ptr[br + 1]; ++e) {
        const std::int64_t bc = layout.col_index[e], j0 = bc * bs;
        const detail::Tile t{i0, rows, j0, std::min(bs, nk - j0), layout.at(br, bc)};
        detail::forward_tile(mask, t, nq, nk, d, scale, q + x * qStrideBH + i0 * d, k + x * kStrideBH + j0 * d,
                             v + x * kStrideBH + j0 * d, sbuf.data(), m.data(), l.data(), acc);
      }
      detail::forward_finish(rows, d, m.data(), l.data(), acc, lse + x * lseStrideBH + i0);
    }
  }
}

template <class T>
void sparse_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                               const T* v, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv,
                               const AttentionOptions& options) {
  detail::check_backward_args("sparse_attention_backward", shape, mask, scale, q, k, v, out, lse, dout, dq, dk, dv,
                              options);
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t qStrideBH = nq * d, kStrideBH = nk * d, lseStrideBH = nq;
  const std::int64_t bs = options.block_size;
  const BlockLayout layout = mask.block_layout(nq, nk, bs, bs);
  const std::int64_t bq = std::min(bs, nq), bk = std::min(bs, nk);
  const int threads = detail::resolve_threads(options);
  detail::BlasSingleThreaded blas1;

  std::vector<T> dvec(static_cast<std::size_t>(bh * nq));  // D (B, H, Nq) = rowsum(dO o O)
  detail::rowsum_dout_out(dout, out, bh * nq, d, dvec.data(), threads);

  auto block = [&](std::int64_t x, std::int64_t br, std::int64_t bc, T* p, T* ds, bool want_dq, bool want_dkv) {
    const std::int64_t i0 = br * bs, j0 = bc * bs;
    const detail::Tile t{i0, std::min(bs, nq - i0), j0, std::min(bs, nk - j0), layout.at(br, bc)};
    const std::int64_t qo = x * qStrideBH + i0 * d, ko = x * kStrideBH + j0 * d;
    detail::backward_tile(mask, t, nq, nk, d, scale, q + qo, k + ko, v + ko, dout + qo, lse + x * lseStrideBH + i0,
                          dvec.data() + x * nq + i0, p, ds, want_dq ? dq + qo : nullptr, want_dkv ? dk + ko : nullptr,
                          want_dkv ? dv + ko : nullptr);
  };

  const bool one_pass = threads == 1 || bh >= 2 * static_cast<std::int64_t>(threads);
  if (one_pass) {
#pragma omp parallel num_threads(detail::team(threads, bh))
    {
      detail::Scratch<T> pbuf(static_cast<std::size_t>(bq * bk));   // (Bs, Bs) S, then P
      detail::Scratch<T> dsbuf(static_cast<std::size_t>(bq * bk));  // (Bs, Bs) dP, then dS
#pragma omp for schedule(dynamic)
      for (std::int64_t x = 0; x < bh; ++x) {
        std::fill(dq + x * qStrideBH, dq + (x + 1) * qStrideBH, T{0});
        std::fill(dk + x * kStrideBH, dk + (x + 1) * kStrideBH, T{0});
        std::fill(dv + x * kStrideBH, dv + (x + 1) * kStrideBH, T{0});
        for (std::int64_t bc = 0; bc < layout.cols; ++bc) {
          for (std::int64_t e = layout.col_ptr[bc]; e < layout.col_ptr[bc + 1]; ++e) {
            block(x, layout.row_index[e], bc, pbuf.data(), dsbuf.data(), true, true);
          }
        }
      }
    }
    return;
  }

#pragma omp parallel num_threads(detail::team(threads, bh * std::max(layout.rows, layout.cols)))
  {
    detail::Scratch<T> pbuf(static_cast<std::size_t>(bq * bk));
    detail::Scratch<T> dsbuf(static_cast<std::size_t>(bq * bk));
    // Pass A: dK, dV per (b, h, block column).
#pragma omp for schedule(dynamic)
    for (std::int64_t unit = 0; unit < bh * layout.cols; ++unit) {
      const std::int64_t x = unit / layout.cols, bc = unit % layout.cols;
      const std::int64_t j0 = bc * bs, cols = std::min(bs, nk - j0);
      std::fill(dk + x * kStrideBH + j0 * d, dk + x * kStrideBH + (j0 + cols) * d, T{0});
      std::fill(dv + x * kStrideBH + j0 * d, dv + x * kStrideBH + (j0 + cols) * d, T{0});
      for (std::int64_t e = layout.col_ptr[bc]; e < layout.col_ptr[bc + 1]; ++e) {
        block(x, layout.row_index[e], bc, pbuf.data(), dsbuf.data(), false, true);
      }
    }
    // Pass B: dQ per (b, h, block row).
#pragma omp for schedule(dynamic)
    for (std::int64_t unit = 0; unit < bh * layout.rows; ++unit) {
      const std::int64_t x = unit / layout.rows, br = unit % layout.rows;
      const std::int64_t i0 = br * bs, rows = std::min(bs, nq - i0);
      std::fill(dq + x * qStrideBH + i0 * d, dq + x * qStrideBH + (i0 + rows) * d, T{0});
      for (std::int64_t e = layout.row_ptr[br]; e < layout.row_ptr[br + 1]; ++e) {
        block(x, br, layout.col_index[e], pbuf.data(), dsbuf.data(), true, false);
      }
    }
  }
}

#define PED_INSTANTIATE(T)                                                                                         \
  template void sparse_attention_forward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*,    \
                                            T*, T*, const AttentionOptions&);                                       \
  template void sparse_attention_backward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*,   \
                                             const T*, const T*, const T*, T*, T*, T*, const AttentionOptions&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped
