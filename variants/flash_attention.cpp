// Flash attention, FlashAttention-2 style. B batch, H heads, Nq/Nk query/key tokens, d head dim,
// s scale, Bq = tile_q (default 128) query rows and Bk = tile_k (default 128) keys per tile.
//
// Forward: parallel over (b, h, query tile); each walks the key tiles left to right with an online
// softmax, accumulating straight into its out rows; only lse is kept. The mask's block layout at
// (Bq, Bk) is computed once per call: empty tiles are skipped, full tiles take no element test.
// Backward: D = rowsum(dO o O), then per tile P = exp(s Q K^T - lse) is recomputed and
//   dV += P^T dO, dS = P o (dO V^T - D), dQ += s dS K, dK += s dS^T Q.
// Race-free split without atomics, chosen by the amount of (b, h) parallelism:
//   - one pass per (b, h) (when threads == 1 or B H >= 2 threads): key tiles outer, query tiles inner;
//   - otherwise two passes: dK, dV per (b, h, key tile) over its query tiles, then dQ per
//     (b, h, query tile) over its key tiles (P and dS computed twice).
// Both orders add the same tile products to each gradient row in the same order, so results are
// bitwise identical for any thread count. Extra memory: two (Bq, Bk) tiles and (Bq) vectors per
// thread, plus D (B, H, Nq) in backward.
#include "variants/flash_attention.hpp"

#include <algorithm>
#include <limits>
#include <vector>

#include "variants/tile_ops.hpp"

namespace ped {

namespace {

// 128 x 128 float tiles: S and dS take 64 KiB each, K and V tiles at d = 64 another 64 KiB,
// together well inside the 2 MiB L2 while keeping each GEMM large enough to run near BLAS speed.
constexpr std::int64_t kDefaultTileQ = 128;
constexpr std::int64_t kDefaultTileK = 128;

}  // namespace

template <class T>
void flash_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                             const T* v, T* out, T* lse, const AttentionOptions& options) {
  detail::check_forward_args("flash_attention_forward", shape, mask, scale, q, k, v, out, lse, options);
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t qStrideBH = nq * d, kStrideBH = nk * d, lseStrideBH = nq;
  const std::int64_t bq = std::min(options.tile_q > 0 ? options.tile_q : kDefaultTileQ, nq);
  const std::int64_t bk = std::min(options.tile_k > 0 ? options.tile_k : kDefaultTileK, nk);
  const BlockLayout layout = mask.block_layout(nq, nk, bq, bk);
  const int threads = detail::resolve_threads(options);
  detail::BlasSingleThreaded blas1;

#pragma omp parallel num_threads(detail::team(threads, bh * layout.rows))
  {
    detail::Scratch<T> sbuf(static_cast<std::size_t>(bq * bk));  // (Bq, Bk) S, then P
    std::vector<T> m(static_cast<std::size_t>(bq));              // (Bq) running row max
    std::vector<double> l(static_cast<std::size_t>(bq));         // (Bq) running row sum
#pragma omp for schedule(dynamic)
    for (std::int64_t unit = 0; unit < bh * layout.rows; ++unit) {
      const std::int64_t x = unit / layout.rows, tr = unit % layout.rows;
      const std::int64_t i0 = tr * bq, rows = std::min(bq, nq - i0);
      T* acc = out + x * qStrideBH + i0 * d;  // (rows, d) the output rows double as accumulator
      std::fill(acc, acc + rows * d, T{0});
      std::fill(m.begin(), m.end(), -std::numeric_limits<T>::infinity());
      std::fill(l.begin(), l.end(), 0.0);
      for (std::int64_t tc = 0; tc < layout.cols; ++tc) {
        const BlockKind kind = layout.at(tr, tc);
        if (kind == BlockKind::empty) continue;
        const std::int64_t j0 = tc * bk;
        const detail::Tile t{i0, rows, j0, std::min(bk, nk - j0), kind};
        detail::forward_tile(mask, t, nq, nk, d, scale, q + x * qStrideBH + i0 * d, k + x * kStrideBH + j0 * d,
                             v + x * kStrideBH + j0 * d, sbuf.data(), m.data(), l.data(), acc);
      }
      detail::forward_finish(rows, d, m.data(), l.data(), acc, lse + x * lseStrideBH + i0);
    }
  }
}

template <class T>
void flash_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                              const T* v, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv,
                              const AttentionOptions& options) {
  detail::check_backward_args("flash_attention_backward", shape, mask, scale, q, k, v, out, lse, dout, dq, dk, dv,
                              options);
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t qStrideBH = nq * d, kStrideBH = nk * d, lseStrideBH = nq;
  const std::int64_t bq = std::min(options.tile_q > 0 ? options.tile_q : kDefaultTileQ, nq);
  const std::int64_t bk = std::min(options.tile_k > 0 ? options.tile_k : kDefaultTileK, nk);
  const BlockLayout layout = mask.block_layout(nq, nk, bq, bk);
  const int threads = detail::resolve_threads(options);
  detail::BlasSingleThreaded blas1;

  std::vector<T> dvec(static_cast<std::size_t>(bh * nq));  // D (B, H, Nq) = rowsum(dO o O)
  detail::rowsum_dout_out(dout, out, bh * nq, d, dvec.data(), threads);

  // One tile of (b, h) = x at block (tr, tc); null gradient pointers are skipped.
  auto tile = [&](std::int64_t x, std::int64_t tr, std::int64_t tc, T* p, T* ds, bool want_dq, bool want_dkv) {
    const std::int64_t i0 = tr * bq, j0 = tc * bk;
    const detail::Tile t{i0, std::min(bq, nq - i0), j0, std::min(bk, nk - j0), layout.at(tr, tc)};
    const std::int64_t qo = x * qStrideBH + i0 * d, ko = x * kStrideBH + j0 * d;
    detail::backward_tile(mask, t, nq, nk, d, scale, q + qo, k + ko, v + ko, dout + qo, lse + x * lseStrideBH + i0,
                          dvec.data() + x * nq + i0, p, ds, want_dq ? dq + qo : nullptr, want_dkv ? dk + ko : nullptr,
                          want_dkv ? dv + ko : nullptr);
  };

  const bool one_pass = threads == 1 || bh >= 2 * static_cast<std::int64_t>(threads);
  if (one_pass) {
#pragma omp parallel num_threads(detail::team(threads, bh))
    {
      detail::Scratch<T> pbuf(static_cast<std::size_t>(bq * bk));   // (Bq, Bk) S, then P
      detail::Scratch<T> dsbuf(static_cast<std::size_t>(bq * bk));  // (Bq, Bk) dP, then dS
#pragma omp for schedule(dynamic)
      for (std::int64_t x = 0; x < bh; ++x) {
        std::fill(dq + x * qStrideBH, dq + (x + 1) * qStrideBH, T{0});
        std::fill(dk + x * kStrideBH, dk + (x + 1) * kStrideBH, T{0});
        std::fill(dv + x * kStrideBH, dv + (x + 1) * kStrideBH, T{0});
        for (std::int64_t tc = 0; tc < layout.cols; ++tc) {
          for (std::int64_t tr = 0; tr < layout.rows; ++tr) {
            if (layout.at(tr, tc) != BlockKind::empty) tile(x, tr, tc, pbuf.data(), dsbuf.data(), true, true);
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
    // Pass A: dK, dV per (b, h, key tile).
#pragma omp for schedule(dynamic)
    for (std::int64_t unit = 0; unit < bh * layout.cols; ++unit) {
      const std::int64_t x = unit / layout.cols, tc = unit % layout.cols;
      const std::int64_t j0 = tc * bk, cols = std::min(bk, nk - j0);
      std::fill(dk + x * kStrideBH + j0 * d, dk + x * kStrideBH + (j0 + cols) * d, T{0});
      std::fill(dv + x * kStrideBH + j0 * d, dv + x * kStrideBH + (j0 + cols) * d, T{0});
      for (std::int64_t tr = 0; tr < layout.rows; ++tr) {
        if (layout.at(tr, tc) != BlockKind::empty) tile(x, tr, tc, pbuf.data(), dsbuf.data(), false, true);
      }
    }
    // Pass B: dQ per (b, h, query tile).
#pragma omp for schedule(dynamic)
    for (std::int64_t unit = 0; unit < bh * layout.rows; ++unit) {
      const std::int64_t x = unit / layout.rows, tr = unit % layout.rows;
      const std::int64_t i0 = tr * bq, rows = std::min(bq, nq - i0);
      std::fill(dq + x * qStrideBH + i0 * d, dq + x * qStrideBH + (i0 + rows) * d, T{0});
      for (std::int64_t tc = 0; tc < layout.cols; ++tc) {
        if (layout.at(tr, tc) != BlockKind::empty) tile(x, tr, tc, pbuf.data(), dsbuf.data(), true, false);
      }
    }
  }
}

#define PED_INSTANTIATE(T)                                                                                        \
  template void flash_attention_forward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*,    \
                                           T*, T*, const AttentionOptions&);                                       \
  template void flash_attention_backward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*,   \
                                            const T*, const T*, const T*, T*, T*, T*, const AttentionOptions&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped
