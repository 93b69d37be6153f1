// AttentionFeatures inside the kernels (internal, not installed). B batch, H heads, H_kv key/value
// heads, Nq/Nk query/key tokens, d head dim; a slice is one (b, h) of a call.
//
// Two layers, so that every kernel gets grouped-query heads and per-sequence lengths without code of
// its own, and applies the score-level features (ALiBi, soft-cap, dropout, sinks) in its tile math:
//   - forward_features / backward_features (this header) cut a call with grouped-query heads or
//     per-sequence lengths into plain slices: per (b, h) one kernel call of shape (1, 1, Nq_b, Nk_b, d)
//     on the slice's own rows (the first Nq_b, Nk_b rows of the padded layout are contiguous), with
//     k, v of key/value head h / (H / H_kv). They write the padding rows (out 0, stats {-inf, 0},
//     dq, dk, dv 0), sum dK, dV over a group's query heads in increasing h (the first head writes
//     dk, dv, the others go through a scratch slice and are added), and sum the sinks' gradient over
//     b in increasing order: results do not depend on the thread count. Without those two features
//     the kernel gets the whole call at once. A sink's gradient that depends on a non-finite input
//     is NaN (mark_dsinks, nonfinite.hpp), whatever the kernel.
//   - ScoreMods is what the kernel applies per slice: softcap, the slice's ALiBi slope, sink and
//     dropout key, from the call's (b, h) bases (a sliced call has B = H = 1 and bases (b, h)).
#pragma once

#include <pedestrian/attention_dropout.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "variants/attention.hpp"
#include "variants/common.hpp"
#include "variants/nonfinite.hpp"

namespace ped::detail {

// The score-level features of one kernel call, and where its slices sit in the user's call.
struct ScoreMods {
  double softcap = 0;                     // c > 0: S = c tanh(s q.k / c); 0: off
  const double* alibi_slopes = nullptr;   // indexed by the global query head
  const double* sinks = nullptr;          // indexed by the global query head
  double dropout_p = 0;                   // 0: off
  std::uint64_t dropout_seed = 0;
  std::int64_t batch_base = 0;            // global sequence of the call's slice 0
  std::int64_t head_base = 0;             // global query head of the call's slice 0
  std::int64_t heads = 1;                 // H of the call (slice bh is (bh / heads, bh % heads) + bases)
  // Backward with sinks: one value per slice of the call (B H of the call), written by the kernel:
  // -sum_i P_i,sink D_i over the slice's rows (D_i = rowsum(dO o O)_i).
  double* dsinks = nullptr;

  bool any() const { return softcap > 0 || alibi_slopes != nullptr || sinks != nullptr || dropout_p > 0; }
  std::int64_t batch_of(std::int64_t bh) const { return batch_base + bh / heads; }
  std::int64_t head_of(std::int64_t bh) const { return head_base + bh % heads; }
  // The ALiBi slope of slice bh (0 without ALiBi): S_ij += -slope |p - j|.
  double slope(std::int64_t bh) const { return alibi_slopes != nullptr ? alibi_slopes[head_of(bh)] : 0.0; }
  // The sink logit of slice bh; -inf without sinks (exp(-inf) = 0 joins no denominator).
  double sink(std::int64_t bh) const {
    return sinks != nullptr ? sinks[head_of(bh)] : -std::numeric_limits<double>::infinity();
  }
  // Dropout of row i of slice bh: keep P_ij iff ped_dropout_keep_at(row_key, j, threshold), kept
  // entries scaled by dropout_scale().
  std::uint64_t dropout_row_key(std::int64_t bh, std::int64_t i) const {
    return ped_dropout_row_key(dropout_seed, batch_of(bh), head_of(bh), i);
  }
  std::uint64_t dropout_threshold() const { return ped_dropout_threshold(dropout_p); }
  double dropout_scale() const { return 1.0 / (1.0 - dropout_p); }
};

// P_ij <- P_ij Z_ij / (1 - p) on row i (keys j0 .. j0 + n) of slice `slice` of a call: the dropped
// entries become 0. Every kernel's dropout.
template <class T>
void dropout_row(const ScoreMods& mods, std::int64_t slice, std::int64_t i, std::int64_t j0, T* row, std::int64_t n) {
  const std::uint64_t key = mods.dropout_row_key(slice, i), threshold = mods.dropout_threshold();
  const T scale = static_cast<T>(mods.dropout_scale());
  const int cols = static_cast<int>(n);
#if defined(_OPENMP)  // this header also reaches code built without OpenMP (plugin_host, bench)
#pragma omp simd
#endif
  for (int c = 0; c < cols; ++c) row[c] = ped_dropout_keep_at(key, j0 + c, threshold) ? row[c] * scale : T{0};
}

// P_i,sink = exp(sink - max_i) inv_sum_i of a row, in double; 0 for a row without key and sink
// ({-inf, 0}).
template <class T>
double sink_probability(const RowStats<T>& st, double sink) {
  if (st.max == -std::numeric_limits<T>::infinity()) return 0.0;
  return std::exp(sink - static_cast<double>(st.max)) * static_cast<double>(st.inv_sum);
}

// The bits of AttentionFeature a kernel implements; throws std::invalid_argument naming fn and the
// first feature the call uses that is not among them.
void require_features(const char* fn, const AttentionShape& shape, const AttentionFeatures& features,
                      std::uint32_t supported);

// Validates the feature values of a call (finite slopes, sinks, softcap > 0 or 0, dropout in [0, 1),
// lengths in range, H_kv dividing H, dsinks set for a backward with sinks); called by
// check_forward_args / check_backward_args.
void check_features(const char* fn, const AttentionShape& shape, const AttentionFeatures& features, bool backward);

// The features forward_features / backward_features give every kernel by slicing.
inline constexpr std::uint32_t kSlicedFeatures =
    attention_feature_bit(AttentionFeature::grouped_query) | attention_feature_bit(AttentionFeature::variable_length);

inline ScoreMods score_mods(const AttentionFeatures& f, std::int64_t heads) {
  ScoreMods m;
  m.softcap = f.softcap;
  m.alibi_slopes = f.alibi_slopes;
  m.sinks = f.sinks;
  m.dropout_p = f.dropout_p;
  m.dropout_seed = f.dropout_seed;
  m.heads = heads;
  return m;
}

inline bool needs_slicing(const AttentionShape& shape, const AttentionFeatures& f) {
  return shape.kv_heads() != shape.heads || f.seqlens_q != nullptr || f.seqlens_k != nullptr;
}

// Runs kernel(sub_shape, q, k, v, out, stats, mods) over the call, sliced when needed (see top).
// Empty sequences (Nq_b = 0 or Nk_b = 0) are not handed to the kernel.
template <class T, class Kernel>
void forward_features(const char* fn, const AttentionShape& shape, const Mask& mask, const T* q, const T* k,
                      const T* v, T* out, RowStats<T>* stats, const AttentionOptions& options, Kernel&& kernel) {
  const AttentionFeatures& f = options.features;
  ScoreMods mods = score_mods(f, shape.heads);
  if (!needs_slicing(shape, f)) return kernel(shape, q, k, v, out, stats, mods);
  const std::int64_t h_all = shape.heads, group = shape.heads / shape.kv_heads();
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  mods.heads = 1;
  for (std::int64_t b = 0; b < shape.batch; ++b) {
    const std::int64_t lq = f.seqlens_q != nullptr ? f.seqlens_q[b] : nq;
    const std::int64_t lk = f.seqlens_k != nullptr ? f.seqlens_k[b] : nk;
    if (lq > 0 && lk > 0) mask.validate(fn, lq, lk);
    for (std::int64_t h = 0; h < h_all; ++h) {
      const std::int64_t bh = b * h_all + h, bkv = b * shape.kv_heads() + h / group;
      T* o = out + bh * nq * d;
      RowStats<T>* st = stats + bh * nq;
      if (lq > 0 && lk > 0) {
        mods.batch_base = b;
        mods.head_base = h;
        kernel(AttentionShape{1, 1, lq, lk, d}, q + bh * nq * d, k + bkv * nk * d, v + bkv * nk * d, o, st, mods);
      } else {
        // No key: every row sees none (out 0); with a sink its probability is 1: stats {sink, 1}.
        for (std::int64_t i = 0; i < lq; ++i) st[i] = f.sinks != nullptr ? RowStats<T>{static_cast<T>(f.sinks[h]), T{1}} : RowStats<T>{};
        std::fill(o, o + lq * d, T{0});
      }
      std::fill(o + lq * d, o + nq * d, T{0});
      std::fill(st + lq, st + nq, RowStats<T>{});
    }
  }
}

// Runs kernel(sub_shape, q, k, v, out, stats, dout, dq, dk, dv, mods) over the call, sliced when
// needed, and writes features.dsinks (see top).
template <class T, class Kernel>
void backward_features(const char* fn, const AttentionShape& shape, const Mask& mask, const T* q, const T* k,
                       const T* v, const T* out, const RowStats<T>* stats, const T* dout, T* dq, T* dk, T* dv,
                       const AttentionOptions& options, Kernel&& kernel) {
  const AttentionFeatures& f = options.features;
  ScoreMods mods = score_mods(f, shape.heads);
  const std::int64_t h_all = shape.heads, hkv = shape.kv_heads(), group = h_all / hkv;
  const std::int64_t nq = shape.seq_q, nk = shape.seq_k, d = shape.head_dim;
  std::vector<double> slice_dsinks;
  if (!needs_slicing(shape, f)) {
    if (f.sinks != nullptr) {
      slice_dsinks.assign(static_cast<std::size_t>(shape.batch * h_all), 0.0);
      mods.dsinks = slice_dsinks.data();
    }
    kernel(shape, q, k, v, out, stats, dout, dq, dk, dv, mods);
    if (f.sinks != nullptr) {
      mark_dsinks(shape, mask, q, k, out, stats, dout, mods.dsinks, options.threads > 0 ? options.threads : 1);
      for (std::int64_t h = 0; h < h_all; ++h) {
        double sum = 0;
        for (std::int64_t b = 0; b < shape.batch; ++b) sum += slice_dsinks[static_cast<std::size_t>(b * h_all + h)];
        f.dsinks[h] = sum;
      }
    }
    return;
  }
  if (f.sinks != nullptr) std::fill(f.dsinks, f.dsinks + h_all, 0.0);
  std::vector<T> scratch_k, scratch_v;
  if (group > 1) {
    scratch_k.resize(static_cast<std::size_t>(nk * d));
    scratch_v.resize(static_cast<std::size_t>(nk * d));
  }
  mods.heads = 1;
  double one_dsink = 0;
  for (std::int64_t b = 0; b < shape.batch; ++b) {
    const std::int64_t lq = f.seqlens_q != nullptr ? f.seqlens_q[b] : nq;
    const std::int64_t lk = f.seqlens_k != nullptr ? f.seqlens_k[b] : nk;
    if (lq > 0 && lk > 0) mask.validate(fn, lq, lk);
    for (std::int64_t h = 0; h < h_all; ++h) {
      const std::int64_t bh = b * h_all + h, bkv = b * hkv + h / group;
      const bool first_of_group = h % group == 0;
      T* gq = dq + bh * nq * d;
      T* gk = dk + bkv * nk * d;
      T* gv = dv + bkv * nk * d;
      if (first_of_group) {  // the group's first head writes dk, dv (padding rows included)
        std::fill(gk + lk * d, gk + nk * d, T{0});
        std::fill(gv + lk * d, gv + nk * d, T{0});
        if (lq == 0 || lk == 0) {
          std::fill(gk, gk + lk * d, T{0});
          std::fill(gv, gv + lk * d, T{0});
        }
      }
      std::fill(gq + lq * d, gq + nq * d, T{0});
      if (lq == 0 || lk == 0) {  // no pair: no gradient (a sink's probability 1 times D_i = dO_i . 0)
        std::fill(gq, gq + lq * d, T{0});
        continue;
      }
      mods.batch_base = b;
      mods.head_base = h;
      one_dsink = 0;
      mods.dsinks = f.sinks != nullptr ? &one_dsink : nullptr;
      T* kk = first_of_group ? gk : scratch_k.data();
      T* vv = first_of_group ? gv : scratch_v.data();
      kernel(AttentionShape{1, 1, lq, lk, d}, q + bh * nq * d, k + bkv * nk * d, v + bkv * nk * d, out + bh * nq * d,
             stats + bh * nq, dout + bh * nq * d, gq, kk, vv, mods);
      if (f.sinks != nullptr) {
        mark_dsinks(AttentionShape{1, 1, lq, lk, d}, mask, q + bh * nq * d, k + bkv * nk * d, out + bh * nq * d,
                    stats + bh * nq, dout + bh * nq * d, &one_dsink, options.threads > 0 ? options.threads : 1);
      }
      if (!first_of_group) {
        for (std::int64_t e = 0; e < lk * d; ++e) {
          gk[e] += scratch_k[static_cast<std::size_t>(e)];
          gv[e] += scratch_v[static_cast<std::size_t>(e)];
        }
      }
      if (f.sinks != nullptr) f.dsinks[h] += one_dsink;
    }
  }
}

}  // namespace ped::detail
