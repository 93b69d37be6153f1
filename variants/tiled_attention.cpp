#include "variants/tiled_attention.hpp"

#include <algorithm>
#include <limits>
#include <vector>

#include "variants/tile_ops.hpp"

namespace ped::detail {

template <class T>
void tiled_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                             const T* v, T* out, T* lse, std::int64_t tile_q, std::int64_t tile_k, int threads) {
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t qStrideBH = nq * d, kStrideBH = nk * d, lseStrideBH = nq;
  const BlockLayout layout = mask.block_layout(nq, nk, tile_q, tile_k);
  const std::int64_t bq = std::min(tile_q, nq), bk = std::min(tile_k, nk);  // scratch extents
  BlasSingleThreaded blas1;

#pragma omp parallel num_threads(team(threads, bh * layout.rows))
  {
    Scratch<T> sbuf(static_cast<std::size_t>(bq * bk));  // (Bq, Bk) S, then P
    std::vector<T> m(static_cast<std::size_t>(bq));       // (Bq) running row max
    std::vector<double> l(static_cast<std::size_t>(bq));  // (Bq) running row sum
#pragma omp for schedule(dynamic)
    for (std::int64_t unit = 0; unit < bh * layout.rows; ++unit) {
      const std::int64_t x = unit / layout.rows, br = unit % layout.rows;
      const std::int64_t i0 = br * tile_q, rows = std::min(tile_q, nq - i0);
      T* acc = out + x * qStrideBH + i0 * d;  // (rows, d) the output rows double as accumulator
      std::fill(acc, acc + rows * d, T{0});
      std::fill(m.begin(), m.end(), -std::numeric_limits<T>::infinity());
      std::fill(l.begin(), l.end(), 0.0);
      for (std::int64_t e = layout.row_ptr[br]; e < layout.row_ptr[br + 1]; ++e) {
        const std::int64_t bc = layout.col_index[e], j0 = bc * tile_k;
        const Tile t{i0, rows, j0, std::min(tile_k, nk - j0), layout.at(br, bc)};
        forward_tile(mask, t, nq, nk, d, scale, q + x * qStrideBH + i0 * d, k + x * kStrideBH + j0 * d,
                             v + x * kStrideBH + j0 * d, sbuf.data(), m.data(), l.data(), acc);
      }
      forward_finish(rows, d, m.data(), l.data(), acc, lse + x * lseStrideBH + i0);
    }
  }
}

template <class T>
void tiled_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                              const T* v, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv,
                              std::int64_t tile_q, std::int64_t tile_k, int threads) {
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t qStrideBH = nq * d, kStrideBH = nk * d, lseStrideBH = nq;
  const BlockLayout layout = mask.block_layout(nq, nk, tile_q, tile_k);
  const std::int64_t bq = std::min(tile_q, nq), bk = std::min(tile_k, nk);  // scratch extents
  BlasSingleThreaded blas1;

  std::vector<T> dvec(static_cast<std::size_t>(bh * nq));  // D (B, H, Nq) = rowsum(dO o O)
  rowsum_dout_out(dout, out, bh * nq, d, dvec.data(), threads);

  auto block = [&](std::int64_t x, std::int64_t br, std::int64_t bc, T* p, T* ds, bool want_dq, bool want_dkv) {
    const std::int64_t i0 = br * tile_q, j0 = bc * tile_k;
    const Tile t{i0, std::min(tile_q, nq - i0), j0, std::min(tile_k, nk - j0), layout.at(br, bc)};
    const std::int64_t qo = x * qStrideBH + i0 * d, ko = x * kStrideBH + j0 * d;
    backward_tile(mask, t, nq, nk, d, scale, q + qo, k + ko, v + ko, dout + qo, lse + x * lseStrideBH + i0,
                          dvec.data() + x * nq + i0, p, ds, want_dq ? dq + qo : nullptr, want_dkv ? dk + ko : nullptr,
                          want_dkv ? dv + ko : nullptr);
  };

  const bool one_pass = threads == 1 || bh >= 2 * static_cast<std::int64_t>(threads);
  if (one_pass) {
#pragma omp parallel num_threads(team(threads, bh))
    {
      Scratch<T> pbuf(static_cast<std::size_t>(bq * bk));   // (Bq, Bk) S, then P
      Scratch<T> dsbuf(static_cast<std::size_t>(bq * bk));  // (Bq, Bk) dP, then dS
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

#pragma omp parallel num_threads(team(threads, bh * std::max(layout.rows, layout.cols)))
  {
    Scratch<T> pbuf(static_cast<std::size_t>(bq * bk));
    Scratch<T> dsbuf(static_cast<std::size_t>(bq * bk));
    // Pass A: dK, dV per (b, h, block column).
#pragma omp for schedule(dynamic)
    for (std::int64_t unit = 0; unit < bh * layout.cols; ++unit) {
      const std::int64_t x = unit / layout.cols, bc = unit % layout.cols;
      const std::int64_t j0 = bc * tile_k, cols = std::min(tile_k, nk - j0);
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
      const std::int64_t i0 = br * tile_q, rows = std::min(tile_q, nq - i0);
      std::fill(dq + x * qStrideBH + i0 * d, dq + x * qStrideBH + (i0 + rows) * d, T{0});
      for (std::int64_t e = layout.row_ptr[br]; e < layout.row_ptr[br + 1]; ++e) {
        block(x, br, layout.col_index[e], pbuf.data(), dsbuf.data(), true, false);
      }
    }
  }
}

#define PED_INSTANTIATE(T)                                                                                      \
  template void tiled_attention_forward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*, T*, \
                                           T*, std::int64_t, std::int64_t, int);                                  \
  template void tiled_attention_backward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*,   \
                                            const T*, const T*, const T*, T*, T*, T*, std::int64_t, std::int64_t, int);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::detail
