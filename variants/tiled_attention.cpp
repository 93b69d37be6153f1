#include "variants/tiled_attention.hpp"

#include <algorithm>
#include <limits>
#include <vector>

#include "variants/tile_ops.hpp"

namespace ped::detail {

template <class T>
void tiled_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                             const T* v, T* out, RowStats<T>* stats, std::int64_t tile_q, std::int64_t tile_k,
                             int threads, PhaseTimes* phases, const ScoreMods& mods) {
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t qStrideBH = nq * d, kStrideBH = nk * d;
  const BlockLayout layout = mask.block_layout(nq, nk, tile_q, tile_k);
  const std::int64_t bq = std::min(tile_q, nq), bk = std::min(tile_k, nk);  // scratch extents
  BlasSingleThreaded blas1;

#pragma omp parallel num_threads(team(threads, bh * layout.rows))
  {
    Scratch<T> sbuf(static_cast<std::size_t>(bq * bk));  // (Bq, Bk) S, then P
    std::vector<T> m(static_cast<std::size_t>(bq));       // (Bq) running row max
    std::vector<double> l(static_cast<std::size_t>(bq));  // (Bq) running row sum
    PhaseClock clock(phases);
#pragma omp for schedule(dynamic)
    for (std::int64_t unit = 0; unit < bh * layout.rows; ++unit) {
      const std::int64_t x = unit / layout.rows, br = unit % layout.rows;
      const std::int64_t i0 = br * tile_q, rows = std::min(tile_q, nq - i0);
      T* acc = out + x * qStrideBH + i0 * d;  // (rows, d) the output rows double as accumulator
      const TileMods<T> tm = tile_mods<T>(mods, x, nq, nk);
      std::fill(acc, acc + rows * d, T{0});
      // A sink starts each row's online softmax as one more score with no value row: max = sink,
      // sum = exp(sink - sink) = 1, so the row stats include it (and a row without keys ends at
      // {sink, 1}, out 0).
      const bool sink = mods.sinks != nullptr;
      std::fill(m.begin(), m.end(), sink ? static_cast<T>(mods.sink(x)) : -std::numeric_limits<T>::infinity());
      std::fill(l.begin(), l.end(), sink ? 1.0 : 0.0);
      for (std::int64_t e = layout.row_ptr[br]; e < layout.row_ptr[br + 1]; ++e) {
        const std::int64_t bc = layout.col_index[e], j0 = bc * tile_k;
        const Tile t{i0, rows, j0, std::min(tile_k, nk - j0), layout.at(br, bc)};
        forward_tile(mask, t, nq, nk, d, scale, q + x * qStrideBH + i0 * d, k + x * kStrideBH + j0 * d,
                             v + x * kStrideBH + j0 * d, sbuf.data(), m.data(), l.data(), acc, tm, clock);
      }
      forward_finish(rows, d, m.data(), l.data(), acc, stats + x * nq + i0, clock);
    }
  }
}

template <class T>
void tiled_attention_backward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                              const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv,
                              std::int64_t tile_q, std::int64_t tile_k, int threads, PhaseTimes* phases,
                              const ScoreMods& mods) {
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t bh = shape.batch * shape.heads;
  const std::int64_t qStrideBH = nq * d, kStrideBH = nk * d;
  const BlockLayout layout = mask.block_layout(nq, nk, tile_q, tile_k);
  const std::int64_t bq = std::min(tile_q, nq), bk = std::min(tile_k, nk);  // scratch extents
  BlasSingleThreaded blas1;

  std::vector<T> dvec(static_cast<std::size_t>(bh * nq));  // D (B, H, Nq) = rowsum(dO o O)
  rowsum_dout_out(dout, out, bh * nq, d, dvec.data(), threads);

  // Sinks: d sink = -sum_i P_i,sink D_i per slice, its rows in order (whatever the threads).
  if (mods.dsinks != nullptr) {
    for (std::int64_t x = 0; x < bh; ++x) {
      const T sink = static_cast<T>(mods.sink(x));
      double acc = 0;
      for (std::int64_t i = 0; i < nq; ++i) {
        acc -= sink_probability(stats[x * nq + i], static_cast<double>(sink)) * static_cast<double>(dvec[static_cast<std::size_t>(x * nq + i)]);
      }
      mods.dsinks[x] = acc;
    }
  }
  const bool dropout = mods.dropout_p > 0, capped = mods.softcap > 0;
  const std::int64_t zn = dropout ? bq * bk : 1, gn = capped ? bq * bk : 1;  // z, g scratch (backward_tile)

  // Slices holding a dominated row (variants/kernels.hpp): whichever order visits the tiles of a row
  // finds its candidates, adds up A_i, B_i (tiles left to right in both orders) and leaves the
  // candidates out of the tiles' dS; once the row is complete their exact dS is added to dQ and dK
  // apart, for each gradient row in the same order in both (dQ_i: keys in order; dK_j: rows in order).
  std::vector<std::uint8_t> slice_dominated(static_cast<std::size_t>(bh));
  for (std::int64_t x = 0; x < bh; ++x) slice_dominated[x] = any_dominated(stats + x * nq, nq);
  std::vector<std::vector<Candidate>> candidates(static_cast<std::size_t>(bh * layout.rows));  // per (b, h, tile row)
  // A_i, B_i of rows i0 .. i0 + rows of slice x, empty; with sinks B_i starts at P_i,sink (the
  // sink's share of 1 - P_ij*, kernels.hpp), the same in both orders.
  auto init_state = [&](std::int64_t x, std::int64_t i0, std::int64_t rows, std::vector<DominatedRow>& state) {
    state.assign(static_cast<std::size_t>(rows), DominatedRow{});
    if (mods.sinks == nullptr) return;
    const T sink = static_cast<T>(mods.sink(x));
    for (std::int64_t r = 0; r < rows; ++r) state[static_cast<std::size_t>(r)].b = sink_probability(stats[x * nq + i0 + r], static_cast<double>(sink));
  };

  auto tile_of = [&](std::int64_t br, std::int64_t bc) {
    const std::int64_t i0 = br * tile_q, j0 = bc * tile_k;
    return Tile{i0, std::min(tile_q, nq - i0), j0, std::min(tile_k, nk - j0), layout.at(br, bc)};
  };
  auto args = [&](std::int64_t x, const Tile& t) {
    const std::int64_t qo = x * qStrideBH + t.i0 * d, ko = x * kStrideBH + t.j0 * d;
    return TileArgs<T>{q + qo, k + ko, v + ko, dout + qo, stats + x * nq + t.i0, dvec.data() + x * nq + t.i0,
                       dq + qo, dk + ko, dv + ko};
  };
  // dQ of one (b, h, tile row), over its non-empty tiles left to right.
  auto row_unit = [&](std::int64_t x, std::int64_t br, T* p, T* ds, T* z, T* g, std::vector<DominatedRow>& rowstate,
                      PhaseClock& clock) {
    const TileMods<T> tm = tile_mods<T>(mods, x, nq, nk);
    const std::int64_t i0 = br * tile_q, rows = std::min(tile_q, nq - i0);
    std::fill(dq + x * qStrideBH + i0 * d, dq + x * qStrideBH + (i0 + rows) * d, T{0});
    std::vector<Candidate>& found = candidates[x * layout.rows + br];
    found.clear();
    DominatedHooks hooks;
    if (slice_dominated[x]) {
      init_state(x, i0, rows, rowstate);
      hooks.state = rowstate.data();
      hooks.found = &found;
    }
    for (std::int64_t e = layout.row_ptr[br]; e < layout.row_ptr[br + 1]; ++e) {
      const Tile t = tile_of(br, layout.col_index[e]);
      backward_tile(mask, t, nq, nk, d, scale, args(x, t), p, ds, z, g, tm, true, false, hooks, clock);
    }
    if (slice_dominated[x]) {
      clock.start();
      dominated_finish(found, i0, rowstate.data(), dvec.data() + x * nq + i0);
      dominated_add_dq(found, d, scale, k + x * kStrideBH, dq + x * qStrideBH);
      clock.lap(AttentionPhase::dominated);
    }
  };
  // dK, dV of one (b, h, tile column), over its non-empty tiles top to bottom.
  auto column_unit = [&](std::int64_t x, std::int64_t bc, T* p, T* ds, T* z, T* g, PhaseClock& clock) {
    const TileMods<T> tm = tile_mods<T>(mods, x, nq, nk);
    const std::int64_t j0 = bc * tile_k, cols = std::min(tile_k, nk - j0);
    std::fill(dk + x * kStrideBH + j0 * d, dk + x * kStrideBH + (j0 + cols) * d, T{0});
    std::fill(dv + x * kStrideBH + j0 * d, dv + x * kStrideBH + (j0 + cols) * d, T{0});
    for (std::int64_t e = layout.col_ptr[bc]; e < layout.col_ptr[bc + 1]; ++e) {
      const std::int64_t br = layout.row_index[e];
      const Tile t = tile_of(br, bc);
      DominatedHooks hooks;
      if (slice_dominated[x]) hooks.left_out = &candidates[x * layout.rows + br];
      backward_tile(mask, t, nq, nk, d, scale, args(x, t), p, ds, z, g, tm, false, true, hooks, clock);
    }
    if (slice_dominated[x]) {
      clock.start();
      for (std::int64_t e = layout.col_ptr[bc]; e < layout.col_ptr[bc + 1]; ++e) {
        dominated_add_dk(candidates[x * layout.rows + layout.row_index[e]], j0, j0 + cols, d, scale,
                         q + x * qStrideBH, dk + x * kStrideBH);
      }
      clock.lap(AttentionPhase::dominated);
    }
  };

  const bool one_pass = threads == 1 || bh >= 2 * static_cast<std::int64_t>(threads);
  if (one_pass) {
#pragma omp parallel num_threads(team(threads, bh))
    {
      Scratch<T> pbuf(static_cast<std::size_t>(bq * bk));   // (Bq, Bk) S, then P
      Scratch<T> dsbuf(static_cast<std::size_t>(bq * bk));  // (Bq, Bk) dP, then dS
      Scratch<T> zbuf(static_cast<std::size_t>(zn));          // (Bq, Bk) Z', then P o Z' (dropout)
      Scratch<T> gbuf(static_cast<std::size_t>(gn));          // (Bq, Bk) 1 - tanh^2 (soft-cap)
      // A_i, B_i of a dominated slice, per tile row; allocated only for the tile rows that hold a
      // dominated row (the first rows of a causal mask, say), so that memory stays flat in N.
      std::vector<std::vector<DominatedRow>> rowstate(static_cast<std::size_t>(layout.rows));
      std::vector<Candidate> found;  // its candidates
      PhaseClock clock(phases);
#pragma omp for schedule(dynamic)
      for (std::int64_t x = 0; x < bh; ++x) {
        std::fill(dq + x * qStrideBH, dq + (x + 1) * qStrideBH, T{0});
        std::fill(dk + x * kStrideBH, dk + (x + 1) * kStrideBH, T{0});
        std::fill(dv + x * kStrideBH, dv + (x + 1) * kStrideBH, T{0});
        const TileMods<T> tm = tile_mods<T>(mods, x, nq, nk);
        DominatedHooks hooks;
        if (slice_dominated[x]) {
          for (std::int64_t br = 0; br < layout.rows; ++br) {
            const std::int64_t i0 = br * tile_q, rows = std::min(tile_q, nq - i0);
            std::vector<DominatedRow>& state = rowstate[static_cast<std::size_t>(br)];
            state.clear();
            if (any_dominated(stats + x * nq + i0, rows)) init_state(x, i0, rows, state);
          }
          found.clear();
          hooks.found = &found;
        }
        for (std::int64_t bc = 0; bc < layout.cols; ++bc) {
          for (std::int64_t e = layout.col_ptr[bc]; e < layout.col_ptr[bc + 1]; ++e) {
            const std::int64_t br = layout.row_index[e];
            const Tile t = tile_of(br, bc);
            if (slice_dominated[x]) {
              std::vector<DominatedRow>& state = rowstate[static_cast<std::size_t>(br)];
              hooks.state = state.empty() ? nullptr : state.data();  // no dominated row: nothing to scan
            }
            backward_tile(mask, t, nq, nk, d, scale, args(x, t), pbuf.data(), dsbuf.data(), zbuf.data(),
                          gbuf.data(), tm, true, true, hooks, clock);
          }
        }
        if (slice_dominated[x]) {
          clock.start();
          dominated_finish_tiled(found, tile_q, rowstate, dvec.data() + x * nq);
          dominated_add_dq(found, d, scale, k + x * kStrideBH, dq + x * qStrideBH);
          dominated_add_dk(found, 0, nk, d, scale, q + x * qStrideBH, dk + x * kStrideBH);
          clock.lap(AttentionPhase::dominated);
        }
      }
    }
    return;
  }

#pragma omp parallel num_threads(team(threads, bh * std::max(layout.rows, layout.cols)))
  {
    Scratch<T> pbuf(static_cast<std::size_t>(bq * bk));
    Scratch<T> dsbuf(static_cast<std::size_t>(bq * bk));
    Scratch<T> zbuf(static_cast<std::size_t>(zn));
    Scratch<T> gbuf(static_cast<std::size_t>(gn));
    std::vector<DominatedRow> rowstate;
    PhaseClock clock(phases);
    // Pass A: dQ per (b, h, tile row).
#pragma omp for schedule(dynamic)
    for (std::int64_t unit = 0; unit < bh * layout.rows; ++unit) {
      row_unit(unit / layout.rows, unit % layout.rows, pbuf.data(), dsbuf.data(), zbuf.data(), gbuf.data(), rowstate,
               clock);
    }
    // Pass B: dK, dV per (b, h, tile column), after every row's candidates are known.
#pragma omp for schedule(dynamic)
    for (std::int64_t unit = 0; unit < bh * layout.cols; ++unit) {
      column_unit(unit / layout.cols, unit % layout.cols, pbuf.data(), dsbuf.data(), zbuf.data(), gbuf.data(), clock);
    }
  }
}

#define PED_INSTANTIATE(T)                                                                                            \
  template void tiled_attention_forward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*, T*,   \
                                           RowStats<T>*, std::int64_t, std::int64_t, int, PhaseTimes*,       \
                                           const ScoreMods&);                            \
  template void tiled_attention_backward<T>(const AttentionShape&, const Mask&, T, const T*, const T*, const T*,      \
                                            const T*, const RowStats<T>*, const T*, T*, T*, T*, std::int64_t,         \
                                            std::int64_t, int, PhaseTimes*, const ScoreMods&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::detail
