// Split-key decoding attention (FlashDecoding), forward only; the method is in
// variants/decode_attention.hpp. B batch, H heads, H_kv key/value heads, Nq/Nk query/key tokens,
// d head dim, s scale, C keys per chunk; lq, lk the lengths of one sequence (Nq, Nk without
// per-sequence lengths).
//
// Terms used below:
//   slice  one (b, key/value head g): the query rows of the group's heads h = g G .. g G + G - 1
//          (G = H / H_kv) stacked, row r = (h - g G) lq + i, against the lk keys of k, v head g;
//   unit   up to kRowBlock consecutive stacked rows of a slice (a decode slice is one unit);
//   item   (unit, chunk): what one thread computes at a time, a partial state per row of the unit.
// Slices are processed in waves of whole slices whose partial states fit kWaveBytes (a decode call
// is one wave): the items of a wave in parallel, then the merge of its rows in parallel. The waves,
// units and chunks depend on the shape and the lengths only.
#include "variants/decode_attention.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <utility>
#include <vector>

#include "variants/features.hpp"
#include "variants/kernels.hpp"
#include "variants/nonfinite.hpp"

namespace ped {

namespace {

constexpr std::int64_t kSubKeys = 128;    // keys per score sub-tile inside a chunk (LIBXSMM's tile sizes)
constexpr std::int64_t kRowBlock = 128;   // stacked query rows per unit
constexpr std::int64_t kMinChunk = 256;   // default chunk: at least this many keys ...
constexpr std::int64_t kMaxChunks = 64;   // ... and at most this many chunks per slice
constexpr double kWaveBytes = 64.0 * 1024 * 1024;  // partial states held at once (one slice at least)

// The visible keys of the query rows of one sequence (lq, lk) cut into chunks: per row its sorted
// intervals, and per (row, chunk) whether the chunk is empty, partial or full for that row.
struct RowMask {
  std::vector<std::vector<KeyInterval>> intervals;  // (lq)
  std::vector<BlockKind> kinds;                     // (lq, chunks)
};

RowMask row_mask(const Mask& mask, std::int64_t lq, std::int64_t lk, std::int64_t chunk, std::int64_t chunks) {
  RowMask rm;
  rm.intervals.resize(static_cast<std::size_t>(lq));
  rm.kinds.assign(static_cast<std::size_t>(lq * chunks), BlockKind::empty);
  std::vector<std::int64_t> count(static_cast<std::size_t>(chunks));
  for (std::int64_t i = 0; i < lq; ++i) {
    std::vector<KeyInterval>& ivs = rm.intervals[static_cast<std::size_t>(i)];
    mask.row_intervals(i, lq, lk, ivs);
    std::fill(count.begin(), count.end(), 0);
    for (const KeyInterval& iv : ivs) {
      for (std::int64_t c = iv.lo / chunk; c <= (iv.hi - 1) / chunk; ++c) {
        count[static_cast<std::size_t>(c)] += std::min(iv.hi, (c + 1) * chunk) - std::max(iv.lo, c * chunk);
      }
    }
    for (std::int64_t c = 0; c < chunks; ++c) {
      const std::int64_t n = count[static_cast<std::size_t>(c)], width = std::min(chunk, lk - c * chunk);
      rm.kinds[static_cast<std::size_t>(i * chunks + c)] =
          n == 0 ? BlockKind::empty : (n == width ? BlockKind::full : BlockKind::partial);
    }
  }
  return rm;
}

struct Slice {
  std::int64_t b, g, lq, lk, chunks;
  const RowMask* rm;
};

struct Unit {
  std::int64_t slice, r0, rows;
  std::size_t qoff;     // its packed query rows (rows, d) in the wave's buffer
  std::size_t partial;  // its partial states: (chunks, rows) of m, l and (chunks, rows, d) of o
};

template <class T>
struct Call {
  const AttentionShape& shape;
  T scale;
  const T* q;
  const T* k;
  const T* v;
  T* out;
  RowStats<T>* stats;
  const AttentionFeatures& f;
  std::int64_t group, chunk;
};

// Sets x[e] to -inf for the keys t0 .. t0 + w hidden by the sorted intervals ivs.
template <class T>
void hide_outside(const std::vector<KeyInterval>& ivs, std::int64_t t0, std::int64_t w, T* x) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  std::int64_t pos = t0;
  for (const KeyInterval& iv : ivs) {
    if (iv.hi <= t0) continue;
    if (iv.lo >= t0 + w) break;
    for (std::int64_t j = pos; j < iv.lo; ++j) x[j - t0] = ninf;
    pos = std::max(pos, std::min(iv.hi, t0 + w));
  }
  for (std::int64_t j = pos; j < t0 + w; ++j) x[j - t0] = ninf;
}

// True when x[0, n) holds a NaN or an infinity.
template <class T>
bool any_nonfinite(const T* x, std::int64_t n) {
  T z = 0;
#pragma omp simd reduction(+ : z)
  for (std::int64_t e = 0; e < n; ++e) z += x[e] - x[e];  // 0 for finite values, NaN otherwise
  return z != z;
}

// The partial state of one item over the keys of chunk c: m (rows), l (rows), o (rows, d)
// unnormalised. qp: the unit's packed query rows; k, v: the slice's keys. Returns true when a score
// or the partial out is not finite (then the slice is recomputed on finite copies).
template <class T>
bool chunk_partial(const Call<T>& call, const Slice& sl, const Unit& u, std::int64_t c, const T* qp, const T* k,
                   const T* v, T* s, T* m, double* l, T* o) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  const std::int64_t d = call.shape.head_dim, rows = u.rows, lq = sl.lq, lk = sl.lk, chunks = sl.chunks;
  const std::int64_t j0 = c * call.chunk, j1 = std::min(lk, j0 + call.chunk);
  const RowMask& rm = *sl.rm;
  auto row_i = [&](std::int64_t r) { return (u.r0 + r) % lq; };
  auto row_head = [&](std::int64_t r) { return sl.g * call.group + (u.r0 + r) / lq; };
  auto kind = [&](std::int64_t r) { return rm.kinds[static_cast<std::size_t>(row_i(r) * chunks + c)]; };

  std::fill(m, m + rows, ninf);
  std::fill(l, l + rows, 0.0);
  bool any_visible = false, all_full = true;
  for (std::int64_t r = 0; r < rows; ++r) {
    any_visible = any_visible || kind(r) != BlockKind::empty;
    all_full = all_full && kind(r) == BlockKind::full;
  }
  if (!any_visible) return false;  // l = 0: the merge skips it
  std::fill(o, o + rows * d, T{0});
  const int ir = static_cast<int>(rows), id = static_cast<int>(d);
  const T cap = static_cast<T>(call.f.softcap);
  const T inv_cap = static_cast<T>(call.f.softcap > 0 ? 1 / call.f.softcap : 0);
  bool bad = false;
  for (std::int64_t t0 = j0; t0 < j1; t0 += kSubKeys) {
    const std::int64_t w = std::min(kSubKeys, j1 - t0);
    if (!all_full) {  // skip a sub-tile no row of the unit sees
      bool seen = false;
      for (std::int64_t r = 0; r < rows && !seen; ++r) {
        const BlockKind kr = kind(r);
        if (kr == BlockKind::full) seen = true;
        if (kr != BlockKind::partial) continue;
        for (const KeyInterval& iv : rm.intervals[static_cast<std::size_t>(row_i(r))]) {
          if (iv.lo < t0 + w && iv.hi > t0) {
            seen = true;
            break;
          }
        }
      }
      if (!seen) continue;
    }
    const int iw = static_cast<int>(w);
    detail::gemm_nt(ir, iw, id, call.scale, qp, id, k + t0 * d, id, T{0}, s, iw);  // s q_i . k_j
    bad = bad || any_nonfinite(s, rows * w);
    for (std::int64_t r = 0; r < rows; ++r) {
      T* row = s + r * w;
      // soft-cap c tanh(S / c), then ALiBi -slope |p - j| with p = i + lk - lq (variants/kernels.hpp)
      const double slope = call.f.alibi_slopes != nullptr ? call.f.alibi_slopes[row_head(r)] : 0.0;
      detail::modify_score_row(row, w, cap, inv_cap, slope, row_i(r) + lk - lq, t0, static_cast<T*>(nullptr));
      const BlockKind kr = kind(r);
      if (kr == BlockKind::empty) {
        std::fill(row, row + w, ninf);
      } else if (kr == BlockKind::partial) {
        hide_outside(rm.intervals[static_cast<std::size_t>(row_i(r))], t0, w, row);
      }
      // online softmax step (variants/tile_ops.hpp, forward_tile)
      const T tile_max = detail::row_max(row, w);
      const T m_new = m[r] > tile_max ? m[r] : tile_max;
      if (m_new == ninf) {
        std::fill(row, row + w, T{0});
        continue;
      }
      const T alpha = detail::exp_nonpositive(m[r] - m_new);
      const double rowsum = detail::exp_shift_sum(row, w, m_new);
      if (alpha != T{1}) {
        T* a = o + r * d;
#pragma omp simd
        for (std::int64_t e = 0; e < d; ++e) a[e] *= alpha;
      }
      l[r] = l[r] * static_cast<double>(alpha) + rowsum;
      m[r] = m_new;
    }
    detail::gemm_nn(ir, id, iw, T{1}, s, iw, v + t0 * d, id, T{1}, o, id);
  }
  return bad || any_nonfinite(o, rows * d);
}

// Merges the partial states of stacked row r of slice sl in chunk order and writes its out row and
// stats. units: the slice's units (row r lies in units[r / kRowBlock]).
template <class T>
void merge_row(const Call<T>& call, const Slice& sl, const Unit* units, std::int64_t r, const T* pm, const double* pl,
               const T* po, std::vector<double>& acc) {
  const std::int64_t d = call.shape.head_dim, hh = r / sl.lq, i = r % sl.lq;
  const std::int64_t h = sl.g * call.group + hh;
  const Unit& u = units[r / kRowBlock];
  const std::int64_t rr = r - u.r0;
  double big_m = -std::numeric_limits<double>::infinity(), big_l = 0;
  if (call.f.sinks != nullptr) {  // the sink joins as a key with score sinks[h] and value 0
    big_m = static_cast<double>(static_cast<T>(call.f.sinks[h]));
    big_l = 1;
  }
  std::fill(acc.begin(), acc.end(), 0.0);
  for (std::int64_t c = 0; c < sl.chunks; ++c) {
    const std::size_t at = u.partial + static_cast<std::size_t>(c * u.rows + rr);
    const double lc = pl[at];
    if (lc == 0) continue;  // no visible key of the chunk
    const double mc = static_cast<double>(pm[at]);
    if (mc > big_m) {
      const double a = std::exp(big_m - mc);  // 0 when big_m = -inf
      big_l *= a;
      for (double& x : acc) x *= a;
      big_m = mc;
    }
    const double b = std::exp(mc - big_m);
    big_l += lc * b;
    const T* oc = po + at * static_cast<std::size_t>(d);
    for (std::int64_t e = 0; e < d; ++e) acc[static_cast<std::size_t>(e)] += b * static_cast<double>(oc[e]);
  }
  const std::int64_t bh = sl.b * call.shape.heads + h;
  T* orow = call.out + (bh * call.shape.seq_q + i) * d;
  RowStats<T>& st = call.stats[bh * call.shape.seq_q + i];
  if (big_l == 0) {  // no visible key and no sink
    std::fill(orow, orow + d, T{0});
    st = RowStats<T>{};
    return;
  }
  for (std::int64_t e = 0; e < d; ++e) orow[e] = static_cast<T>(acc[static_cast<std::size_t>(e)] / big_l);
  st = RowStats<T>{static_cast<T>(big_m), static_cast<T>(1.0 / big_l)};
}

// One wave: slices [s0, s1) of `slices`.
template <class T>
void run_wave(const Call<T>& call, const Mask& mask, const std::vector<Slice>& slices, std::size_t s0, std::size_t s1,
              int threads) {
  const AttentionShape& shape = call.shape;
  const std::int64_t d = shape.head_dim, nq = shape.seq_q, nk = shape.seq_k;
  // Units, their packed query rows and partial states.
  std::vector<Unit> units;
  std::vector<std::size_t> first_unit(s1 - s0 + 1);
  std::size_t qsize = 0, psize = 0;
  for (std::size_t x = s0; x < s1; ++x) {
    const Slice& sl = slices[x];
    first_unit[x - s0] = units.size();
    const std::int64_t rows_all = call.group * sl.lq;
    for (std::int64_t r0 = 0; r0 < rows_all; r0 += kRowBlock) {
      const std::int64_t rows = std::min(kRowBlock, rows_all - r0);
      units.push_back(Unit{static_cast<std::int64_t>(x), r0, rows, qsize, psize});
      qsize += static_cast<std::size_t>(rows * d);
      psize += static_cast<std::size_t>(sl.chunks * rows);
    }
  }
  first_unit[s1 - s0] = units.size();
  std::vector<T> qpack(qsize);
  for (const Unit& u : units) {
    const Slice& sl = slices[static_cast<std::size_t>(u.slice)];
    for (std::int64_t r = 0; r < u.rows; ++r) {
      const std::int64_t h = sl.g * call.group + (u.r0 + r) / sl.lq, i = (u.r0 + r) % sl.lq;
      const T* src = call.q + ((sl.b * shape.heads + h) * nq + i) * d;
      std::copy(src, src + d, qpack.begin() + static_cast<std::ptrdiff_t>(u.qoff + static_cast<std::size_t>(r * d)));
    }
  }
  std::vector<T> pm(psize), po(psize * static_cast<std::size_t>(d));
  std::vector<double> pl(psize);
  struct Item {
    std::size_t unit;
    std::int64_t chunk;
  };
  std::vector<Item> items;
  for (std::size_t e = 0; e < units.size(); ++e) {
    for (std::int64_t c = 0; c < slices[static_cast<std::size_t>(units[e].slice)].chunks; ++c) items.push_back({e, c});
  }
  // k, v of each slice: the caller's, or finite copies when the slice is recomputed.
  std::vector<const T*> kv_k(s1 - s0), kv_v(s1 - s0);
  for (std::size_t x = s0; x < s1; ++x) {
    const std::int64_t off = (slices[x].b * shape.kv_heads() + slices[x].g) * nk * d;
    kv_k[x - s0] = call.k + off;
    kv_v[x - s0] = call.v + off;
  }
  std::vector<std::uint8_t> bad(items.size(), 0);
  auto run_items = [&](const std::vector<std::size_t>& which) {
    const std::int64_t n = static_cast<std::int64_t>(which.size());
    detail::BlasSingleThreaded blas1;
#pragma omp parallel num_threads(detail::team(threads, n))
    {
      detail::Scratch<T> sbuf(static_cast<std::size_t>(kRowBlock * kSubKeys));
#pragma omp for schedule(dynamic)
      for (std::int64_t e = 0; e < n; ++e) {
        const std::size_t it = which[static_cast<std::size_t>(e)];
        const Unit& u = units[items[it].unit];
        const std::size_t x = static_cast<std::size_t>(u.slice);
        const std::size_t at = u.partial + static_cast<std::size_t>(items[it].chunk * u.rows);
        bad[it] = chunk_partial(call, slices[x], u, items[it].chunk, qpack.data() + u.qoff, kv_k[x - s0],
                                kv_v[x - s0], sbuf.data(), pm.data() + at, pl.data() + at,
                                po.data() + at * static_cast<std::size_t>(d));
      }
    }
  };
  std::vector<std::size_t> all(items.size());
  for (std::size_t e = 0; e < items.size(); ++e) all[e] = e;
  run_items(all);

  // Slices that met a non-finite value: recomputed on finite copies (variants/nonfinite.hpp), marked below.
  std::vector<std::uint8_t> recomputed(s1 - s0, 0);
  for (std::size_t it = 0; it < items.size(); ++it) {
    if (bad[it] != 0) recomputed[static_cast<std::size_t>(units[items[it].unit].slice) - s0] = 1;
  }
  std::vector<std::vector<T>> copies;
  std::vector<std::size_t> again;
  for (std::size_t x = s0; x < s1; ++x) {
    if (recomputed[x - s0] == 0) continue;
    const std::int64_t n = slices[x].lk * d;
    copies.push_back(detail::finite_copy(kv_k[x - s0], n));
    kv_k[x - s0] = copies.back().data();
    copies.push_back(detail::finite_copy(kv_v[x - s0], n));
    kv_v[x - s0] = copies.back().data();
    for (std::size_t e = first_unit[x - s0]; e < first_unit[x - s0 + 1]; ++e) {
      T* qp = qpack.data() + units[e].qoff;
      for (std::int64_t c = 0; c < units[e].rows * d; ++c) {
        if (!std::isfinite(qp[c])) qp[c] = T{0};
      }
    }
  }
  for (std::size_t it = 0; it < items.size(); ++it) {
    if (recomputed[static_cast<std::size_t>(units[items[it].unit].slice) - s0] != 0) again.push_back(it);
  }
  if (!again.empty()) run_items(again);

  // Merge: every stacked row of the wave, in parallel; each row's chunks in order.
  std::vector<std::pair<std::size_t, std::int64_t>> rows;  // (slice, stacked row)
  for (std::size_t x = s0; x < s1; ++x) {
    for (std::int64_t r = 0; r < call.group * slices[x].lq; ++r) rows.emplace_back(x, r);
  }
  const std::int64_t nrows = static_cast<std::int64_t>(rows.size());
#pragma omp parallel num_threads(detail::team(threads, nrows * d * slices[s0].chunks / 16384))
  {
    std::vector<double> acc(static_cast<std::size_t>(d));
#pragma omp for schedule(static)
    for (std::int64_t e = 0; e < nrows; ++e) {
      const std::size_t x = rows[static_cast<std::size_t>(e)].first;
      merge_row(call, slices[x], units.data() + first_unit[x - s0], rows[static_cast<std::size_t>(e)].second,
                pm.data(), pl.data(), po.data(), acc);
    }
  }
  for (std::size_t x = s0; x < s1; ++x) {
    if (recomputed[x - s0] == 0) continue;
    const Slice& sl = slices[x];
    const std::int64_t off = (sl.b * shape.kv_heads() + sl.g) * nk * d;
    for (std::int64_t h = sl.g * call.group; h < (sl.g + 1) * call.group; ++h) {
      const std::int64_t bh = sl.b * shape.heads + h;
      detail::mark_forward(AttentionShape{1, 1, sl.lq, sl.lk, d}, mask, call.q + bh * nq * d, call.k + off,
                           call.v + off, call.out + bh * nq * d, call.stats + bh * nq);
    }
  }
}

template <class T>
void decode_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k, const T* v,
                    T* out, RowStats<T>* stats, const AttentionOptions& options) {
  constexpr const char* fn = "decode_attention_forward";
  const AttentionFeatures& f = options.features;
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  const std::int64_t hkv = shape.kv_heads(), group = shape.heads / hkv;
  const std::int64_t chunk = options.tile_k > 0 ? options.tile_k : decode_chunk_keys(nk);
  const Call<T> call{shape, scale, q, k, v, out, stats, f, group, chunk};

  std::map<std::pair<std::int64_t, std::int64_t>, RowMask> masks;  // per (lq, lk)
  std::vector<Slice> slices;
  for (std::int64_t b = 0; b < shape.batch; ++b) {
    const std::int64_t lq = f.seqlens_q != nullptr ? f.seqlens_q[b] : nq;
    const std::int64_t lk = f.seqlens_k != nullptr ? f.seqlens_k[b] : nk;
    for (std::int64_t h = 0; h < shape.heads; ++h) {  // padding rows; rows of a sequence without keys
      const std::int64_t bh = b * shape.heads + h;
      const std::int64_t live = lk == 0 ? 0 : lq;  // rows the slices below write
      std::fill(out + (bh * nq + live) * d, out + (bh + 1) * nq * d, T{0});
      for (std::int64_t i = live; i < nq; ++i) {
        // No key: a sink takes probability 1 ({sink, 1}); otherwise {-inf, 0}.
        stats[bh * nq + i] = i < lq && f.sinks != nullptr ? RowStats<T>{static_cast<T>(f.sinks[h]), T{1}} : RowStats<T>{};
      }
    }
    if (lq == 0 || lk == 0) continue;
    if (f.seqlens_q != nullptr || f.seqlens_k != nullptr) mask.validate(fn, lq, lk);
    const std::int64_t chunks = detail::ceil_div(lk, chunk);
    auto found = masks.find({lq, lk});
    if (found == masks.end()) found = masks.emplace(std::make_pair(lq, lk), row_mask(mask, lq, lk, chunk, chunks)).first;
    for (std::int64_t g = 0; g < hkv; ++g) slices.push_back(Slice{b, g, lq, lk, chunks, &found->second});
  }
  const int threads = detail::resolve_threads(options);
  std::size_t s0 = 0;
  while (s0 < slices.size()) {
    std::size_t s1 = s0;
    double bytes = 0;
    while (s1 < slices.size()) {
      const Slice& sl = slices[s1];
      const double more = static_cast<double>(group * sl.lq) * static_cast<double>(sl.chunks) *
                          (static_cast<double>(sizeof(T)) * static_cast<double>(d + 1) + 8.0);
      if (s1 > s0 && bytes + more > kWaveBytes) break;
      bytes += more;
      ++s1;
    }
    run_wave(call, mask, slices, s0, s1, threads);
    s0 = s1;
  }
}

}  // namespace

std::int64_t decode_chunk_keys(std::int64_t seq_k) {
  const std::int64_t per = detail::ceil_div(std::max<std::int64_t>(seq_k, 1), kMaxChunks);
  return std::max(kMinChunk, static_cast<std::int64_t>(std::bit_ceil(static_cast<std::uint64_t>(per))));
}

std::uint32_t decode_attention_features() {
  return detail::kSlicedFeatures | attention_feature_bit(AttentionFeature::alibi) |
         attention_feature_bit(AttentionFeature::softcap) | attention_feature_bit(AttentionFeature::sinks);
}

template <class T>
void decode_attention_forward(const AttentionShape& shape, const Mask& mask, T scale, const T* q, const T* k,
                              const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options) {
  detail::check_forward_args("decode_attention_forward", shape, mask, scale, q, k, v, out, stats, options);
  detail::require_features("decode_attention_forward", shape, options.features, decode_attention_features());
  decode_forward(shape, mask, scale, q, k, v, out, stats, options);
}

template void decode_attention_forward<float>(const AttentionShape&, const Mask&, float, const float*, const float*,
                                              const float*, float*, RowStats<float>*, const AttentionOptions&);
template void decode_attention_forward<double>(const AttentionShape&, const Mask&, double, const double*,
                                               const double*, const double*, double*, RowStats<double>*,
                                               const AttentionOptions&);

}  // namespace ped
