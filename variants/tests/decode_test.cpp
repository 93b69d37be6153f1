// flash_decode (variants/decode_attention.hpp): split-key decoding against the naive kernel and
// against a plain double-precision evaluation of attention.hpp's feature math, in float and double.
// B batch, H heads, H_kv key/value heads, Nq/Nk query/key tokens, d head dim.
//   - Nq in {1, 3, 16} x Nk in {1, 7, 300, 5000} x masks none, causal, sliding window, explicit blocks;
//   - ALiBi, soft-cap, sinks, each alone and together; grouped-query heads H_kv = 1 and H_kv = H;
//     per-sequence lengths with an empty cache in one sequence;
//   - bitwise identical results for 1, 2, 3 and 5 threads, and whatever the chunking of the work;
//   - one long cache (Nk = 65536, Nq = 1, d = 64, H = 2);
//   - no backward, and dropout refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "variants/attention.hpp"
#include "variants/decode_attention.hpp"
#include "variants/registry.hpp"
#include "variants/tests/test_util.hpp"

namespace ped::test {
namespace {

// Float: the decode kernel's scores and partial sums are rounded to float, the references' are not;
// the errors seen are below 1e-6 (norm-wise), 4e-6 leaves room for Nk = 5000 row sums.
template <class T>
double tol() {
  return std::is_same_v<T, float> ? 4e-6 : 1e-13;
}

const AttentionImpl& decode() { return attention_impl("flash_decode"); }
const AttentionImpl& naive() { return attention_impl("naive"); }

// Forward only: out and the lse of the row stats, poisoned first so that every entry must be written.
template <class T>
struct Fwd {
  std::vector<T> out, lse;
  std::vector<RowStats<T>> stats;
};

template <class T>
Fwd<T> forward(const AttentionImpl& impl, const Problem<T>& p, const Mask& mask, const AttentionOptions& o) {
  Fwd<T> r;
  const AttentionShape& s = p.shape;
  r.out.assign(p.q.size(), T{-7});
  r.stats.assign(static_cast<std::size_t>(s.batch * s.heads * s.seq_q), RowStats<T>{T{-7}, T{-7}});
  r.lse.assign(r.stats.size(), T{-7});
  run_forward<T>(impl, s, mask, p.scale, p.q.data(), p.k.data(), p.v.data(), r.out.data(), r.stats.data(), o);
  lse_from_stats<T>(static_cast<std::int64_t>(r.stats.size()), r.stats.data(), r.lse.data());
  return r;
}

// attention.hpp's math with features, per (b, h) and query row, in double from the inputs as given.
template <class T>
Fwd<T> reference(const Problem<T>& p, const Mask& mask, const AttentionFeatures& f) {
  const AttentionShape& s = p.shape;
  const std::int64_t nq = s.seq_q, nk = s.seq_k, d = s.head_dim, group = s.heads / s.kv_heads();
  Fwd<T> r;
  r.out.assign(p.q.size(), T{0});
  r.lse.assign(static_cast<std::size_t>(s.batch * s.heads * nq), -std::numeric_limits<T>::infinity());
  const double ninf = -std::numeric_limits<double>::infinity();
  for (std::int64_t b = 0; b < s.batch; ++b) {
    const std::int64_t lq = f.seqlens_q != nullptr ? f.seqlens_q[b] : nq;
    const std::int64_t lk = f.seqlens_k != nullptr ? f.seqlens_k[b] : nk;
    for (std::int64_t h = 0; h < s.heads; ++h) {
      const std::int64_t bh = b * s.heads + h, bkv = b * s.kv_heads() + h / group;
      for (std::int64_t i = 0; i < lq; ++i) {
        const T* qi = p.q.data() + (bh * nq + i) * d;
        std::vector<double> sc(static_cast<std::size_t>(lk), ninf);
        double mx = f.sinks != nullptr ? f.sinks[h] : ninf;
        for (std::int64_t j = 0; j < lk; ++j) {
          if (!mask.visible(i, j, lq, lk)) continue;
          const T* kj = p.k.data() + (bkv * nk + j) * d;
          double dot = 0;
          for (std::int64_t c = 0; c < d; ++c) dot += static_cast<double>(qi[c]) * static_cast<double>(kj[c]);
          double x = static_cast<double>(p.scale) * dot;
          if (f.softcap > 0) x = f.softcap * std::tanh(x / f.softcap);
          if (f.alibi_slopes != nullptr) x -= f.alibi_slopes[h] * static_cast<double>(std::abs(i + lk - lq - j));
          sc[static_cast<std::size_t>(j)] = x;
          mx = std::max(mx, x);
        }
        if (mx == ninf) continue;  // no key, no sink: out 0, lse -inf
        double sum = f.sinks != nullptr ? std::exp(f.sinks[h] - mx) : 0.0;
        std::vector<double> o(static_cast<std::size_t>(d), 0.0);
        for (std::int64_t j = 0; j < lk; ++j) {
          if (sc[static_cast<std::size_t>(j)] == ninf) continue;
          const double e = std::exp(sc[static_cast<std::size_t>(j)] - mx);
          sum += e;
          const T* vj = p.v.data() + (bkv * nk + j) * d;
          for (std::int64_t c = 0; c < d; ++c) o[static_cast<std::size_t>(c)] += e * static_cast<double>(vj[c]);
        }
        for (std::int64_t c = 0; c < d; ++c) {
          r.out[static_cast<std::size_t>((bh * nq + i) * d + c)] = static_cast<T>(o[static_cast<std::size_t>(c)] / sum);
        }
        r.lse[static_cast<std::size_t>(bh * nq + i)] = static_cast<T>(mx + std::log(sum));
      }
    }
  }
  return r;
}

// The option sets every comparison runs: the default chunks on 2 threads, and chunks of 7 keys
// (many chunks at every Nk) on 1 and 3 threads.
std::vector<AttentionOptions> option_sets(const AttentionFeatures& f = {}) {
  std::vector<AttentionOptions> sets{AttentionOptions{.threads = 2}, AttentionOptions{.threads = 1, .tile_k = 7},
                                     AttentionOptions{.threads = 3, .tile_k = 7}};
  for (AttentionOptions& o : sets) o.features = f;
  return sets;
}

// An explicit block mask for Nq x Nk of 2 x 64 blocks, about two thirds visible.
Mask block_mask(std::int64_t nq, std::int64_t nk) {
  const std::int64_t rows = (nq + 1) / 2, cols = (nk + 63) / 64;
  std::vector<std::uint8_t> vis(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) vis[static_cast<std::size_t>(r * cols + c)] = (r + 2 * c) % 3 != 1;
  }
  return Mask::explicit_blocks(2, 64, rows, cols, vis);
}

// flash_decode against naive (when naive declares the call's features) and against reference().
template <class T>
void compare(const Problem<T>& p, const Mask& mask, const AttentionFeatures& f, const std::string& what) {
  const Fwd<T> ref = reference(p, mask, f);
  const std::uint32_t used = f.used(p.shape);
  const bool with_naive = naive().supports_features(used);
  AttentionOptions no{.threads = 2};
  no.features = f;
  const Fwd<T> nv = with_naive ? forward(naive(), p, mask, no) : Fwd<T>{};
  for (const AttentionOptions& o : option_sets(f)) {
    const Fwd<T> r = forward(decode(), p, mask, o);
    const std::string w = what + " " + mask.name() + " threads=" + std::to_string(o.threads) +
                          " tile_k=" + std::to_string(o.tile_k);
    EXPECT_LE(norm_rel_err(r.out, ref.out), tol<T>()) << w;
    EXPECT_LE(norm_rel_err(r.lse, ref.lse), tol<T>()) << w;
    if (with_naive) {
      EXPECT_LE(norm_rel_err(r.out, nv.out), tol<T>()) << w << " vs naive";
      EXPECT_LE(norm_rel_err(r.lse, nv.lse), tol<T>()) << w << " vs naive";
    }
  }
}

template <class T>
class Decode : public ::testing::Test {};
using Dtypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Decode, Dtypes);

TYPED_TEST(Decode, MatchesNaiveOverQueriesKeysAndMasks) {
  using T = TypeParam;
  for (std::int64_t nq : {1, 3, 16}) {
    for (std::int64_t nk : {1, 7, 300, 5000}) {
      const AttentionShape shape{.batch = 2, .heads = 2, .seq_q = nq, .seq_k = nk, .head_dim = 16};
      const Problem<T> p = make_problem<T>(shape, kSeed + static_cast<std::uint64_t>(nq * 10007 + nk));
      for (const Mask& mask : {Mask::none(), Mask::causal(), Mask::sliding_window(40, 2), block_mask(nq, nk)}) {
        compare(p, mask, {}, shape_string(shape));
      }
    }
  }
}

// The reference agrees with naive where naive applies (the plain math): the feature checks below
// compare with the same code.
TYPED_TEST(Decode, ReferenceMatchesNaiveWithoutFeatures) {
  using T = TypeParam;
  const AttentionShape shape{.batch = 2, .heads = 4, .seq_q = 5, .seq_k = 77, .head_dim = 8, .heads_kv = 2};
  const Problem<T> p = make_problem<T>(shape, kSeed + 3);
  for (const Mask& mask : {Mask::none(), Mask::causal(), block_mask(5, 77)}) {
    const Fwd<T> ref = reference(p, mask, {});
    const Fwd<T> nv = forward(naive(), p, mask, AttentionOptions{.threads = 1});
    EXPECT_LE(norm_rel_err(nv.out, ref.out), tol<T>()) << mask.name();
    EXPECT_LE(norm_rel_err(nv.lse, ref.lse), tol<T>()) << mask.name();
  }
}

TYPED_TEST(Decode, FeaturesAloneAndTogether) {
  using T = TypeParam;
  const std::vector<double> slopes{0.5, 0.25, 0.125, 0.0625};
  const std::vector<double> sinks{0.3, -2.0, 4.0, 1.0};  // 4.0: the sink dominates that head
  for (std::int64_t heads_kv : {1, 4}) {  // MQA and plain heads
    for (std::int64_t nq : {1, 3, 16}) {
      const AttentionShape shape{.batch = 2, .heads = 4, .seq_q = nq, .seq_k = 300, .head_dim = 16, .heads_kv = heads_kv};
      Problem<T> p = make_problem<T>(shape, kSeed + 11 + static_cast<std::uint64_t>(nq));
      p.scale = T{2};  // larger scores, so that the soft-cap bends them
      for (int which = 0; which < 4; ++which) {
        AttentionFeatures f;
        if (which == 0 || which == 3) f.alibi_slopes = slopes.data();
        if (which == 1 || which == 3) f.softcap = 1.5;
        if (which == 2 || which == 3) f.sinks = sinks.data();
        const std::string what = shape_string(shape) + " H_kv=" + std::to_string(heads_kv) + " features=" +
                                 std::to_string(which);
        for (const Mask& mask : {Mask::none(), Mask::causal(), Mask::sliding_window(20, 0)}) compare(p, mask, f, what);
      }
    }
  }
}

TYPED_TEST(Decode, GroupedQueryHeads) {
  using T = TypeParam;
  for (std::int64_t heads_kv : {1, 2, 6}) {
    for (std::int64_t nq : {1, 3, 16}) {
      const AttentionShape shape{.batch = 2, .heads = 6, .seq_q = nq, .seq_k = 300, .head_dim = 8, .heads_kv = heads_kv};
      const Problem<T> p = make_problem<T>(shape, kSeed + 21 + static_cast<std::uint64_t>(heads_kv * 100 + nq));
      for (const Mask& mask : {Mask::none(), Mask::causal(), block_mask(nq, 300)}) {
        compare(p, mask, {}, shape_string(shape) + " H_kv=" + std::to_string(heads_kv));
      }
    }
  }
}

// Per-sequence lengths: an empty cache in one sequence (its rows see no key: out 0, lse -inf, or
// the sink's {sink, 1}), a one-token cache, padding filled with NaN that must never be read.
TYPED_TEST(Decode, SequenceLengthsWithAnEmptyCache) {
  using T = TypeParam;
  const AttentionShape shape{.batch = 4, .heads = 4, .seq_q = 3, .seq_k = 300, .head_dim = 8, .heads_kv = 2};
  const std::vector<std::int64_t> lq{3, 1, 2, 0}, lk{300, 0, 1, 17};
  Problem<T> p = make_problem<T>(shape, kSeed + 31);
  const std::int64_t d = shape.head_dim;
  for (std::int64_t b = 0; b < shape.batch; ++b) {
    for (std::int64_t h = 0; h < shape.heads; ++h) {
      const std::int64_t bh = b * shape.heads + h;
      for (std::int64_t e = lq[static_cast<std::size_t>(b)] * d; e < shape.seq_q * d; ++e) {
        p.q[static_cast<std::size_t>(bh * shape.seq_q * d + e)] = std::numeric_limits<T>::quiet_NaN();
      }
    }
    for (std::int64_t g = 0; g < shape.kv_heads(); ++g) {
      const std::int64_t bg = b * shape.kv_heads() + g;
      for (std::int64_t e = lk[static_cast<std::size_t>(b)] * d; e < shape.seq_k * d; ++e) {
        p.k[static_cast<std::size_t>(bg * shape.seq_k * d + e)] = std::numeric_limits<T>::quiet_NaN();
        p.v[static_cast<std::size_t>(bg * shape.seq_k * d + e)] = std::numeric_limits<T>::quiet_NaN();
      }
    }
  }
  const std::vector<double> sinks{0.5, 1.0, -1.0, 2.0};
  for (bool with_sinks : {false, true}) {
    AttentionFeatures f;
    f.seqlens_q = lq.data();
    f.seqlens_k = lk.data();
    if (with_sinks) f.sinks = sinks.data();
    for (const Mask& mask : {Mask::none(), Mask::causal()}) {
      compare(p, mask, f, std::string("lengths sinks=") + (with_sinks ? "1" : "0"));
      const Fwd<T> r = forward(decode(), p, mask, option_sets(f)[0]);
      for (std::int64_t h = 0; h < shape.heads; ++h) {  // sequence 1: one query row, no key
        const RowStats<T> st = r.stats[static_cast<std::size_t>((1 * shape.heads + h) * shape.seq_q)];
        if (with_sinks) {
          EXPECT_EQ(st.max, static_cast<T>(sinks[static_cast<std::size_t>(h)])) << mask.name();
          EXPECT_EQ(st.inv_sum, T{1}) << mask.name();
        } else {
          EXPECT_EQ(st.max, -std::numeric_limits<T>::infinity()) << mask.name();
          EXPECT_EQ(st.inv_sum, T{0}) << mask.name();
        }
      }
      EXPECT_FALSE(has_nan_or_inf(r.out)) << mask.name();
    }
  }
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Chunks depend on Nk (or tile_k) only, and the merge runs in chunk order: any thread count gives
// the same bits, with every feature on, lengths, GQA and a non-finite key.
TYPED_TEST(Decode, BitwiseIdenticalForAnyThreadCount) {
  using T = TypeParam;
  const AttentionShape shape{.batch = 3, .heads = 4, .seq_q = 3, .seq_k = 2000, .head_dim = 16, .heads_kv = 2};
  Problem<T> p = make_problem<T>(shape, kSeed + 41);
  const std::vector<double> slopes{0.01, 0.02, 0.04, 0.08}, sinks{0.1, 0.2, 0.3, 0.4};
  const std::vector<std::int64_t> lq{3, 2, 1}, lk{2000, 1500, 999};
  AttentionFeatures f;
  f.alibi_slopes = slopes.data();
  f.softcap = 5;
  f.sinks = sinks.data();
  f.seqlens_q = lq.data();
  f.seqlens_k = lk.data();
  for (bool nan_key : {false, true}) {
    if (nan_key) p.k[static_cast<std::size_t>(shape.seq_k * shape.head_dim + 700 * shape.head_dim + 3)] = std::numeric_limits<T>::quiet_NaN();
    for (std::int64_t tile_k : {0, 100}) {
      std::vector<Fwd<T>> runs;
      for (int threads : {1, 2, 3, 5}) {
        AttentionOptions o{.threads = threads, .tile_k = tile_k};
        o.features = f;
        runs.push_back(forward(decode(), p, Mask::causal(), o));
      }
      for (std::size_t x = 1; x < runs.size(); ++x) {
        EXPECT_TRUE(bitwise_equal(runs[0].out, runs[x].out)) << "run " << x << " tile_k=" << tile_k << " nan=" << nan_key;
        EXPECT_TRUE(bitwise_equal(runs[0].stats, runs[x].stats)) << "run " << x << " tile_k=" << tile_k;
      }
      if (!nan_key) {
        EXPECT_FALSE(has_nan_or_inf(runs[0].out));
        EXPECT_LE(norm_rel_err(runs[0].out, reference(p, Mask::causal(), f).out), tol<T>());
      } else {
        EXPECT_TRUE(has_nan_or_inf(runs[0].out));
      }
    }
  }
}

// A NaN in one key of one key/value head: exactly the rows of that group that see the key are NaN
// (out and stats), every other row is the finite result, as for the other kernels.
TYPED_TEST(Decode, NonFiniteKeyPoisonsOnlyTheRowsThatSeeIt) {
  using T = TypeParam;
  const AttentionShape shape{.batch = 1, .heads = 4, .seq_q = 4, .seq_k = 600, .head_dim = 8, .heads_kv = 2};
  Problem<T> p = make_problem<T>(shape, kSeed + 51);
  const Fwd<T> clean = forward(decode(), p, Mask::causal(), AttentionOptions{.threads = 2});
  const std::int64_t j = 598;  // seen by query rows 2 and 3 only (p = i + 596)
  p.k[static_cast<std::size_t>((1 * shape.seq_k + j) * shape.head_dim + 5)] = std::numeric_limits<T>::infinity();
  const Fwd<T> r = forward(decode(), p, Mask::causal(), AttentionOptions{.threads = 2});
  const Fwd<T> nv = forward(naive(), p, Mask::causal(), AttentionOptions{.threads = 2});
  for (std::int64_t h = 0; h < shape.heads; ++h) {
    for (std::int64_t i = 0; i < shape.seq_q; ++i) {
      const std::size_t row = static_cast<std::size_t>(h * shape.seq_q + i);
      const bool poisoned = h >= 2 && i >= 2;  // group 1 holds heads 2, 3
      EXPECT_EQ(std::isnan(r.stats[row].max), poisoned) << "h=" << h << " i=" << i;
      EXPECT_EQ(std::isnan(r.stats[row].max), std::isnan(nv.stats[row].max)) << "h=" << h << " i=" << i;
      for (std::int64_t c = 0; c < shape.head_dim; ++c) {
        const std::size_t e = row * static_cast<std::size_t>(shape.head_dim) + static_cast<std::size_t>(c);
        if (poisoned) {
          EXPECT_TRUE(std::isnan(r.out[e]));
        } else {
          EXPECT_EQ(r.out[e], clean.out[e]) << "h=" << h << " i=" << i;
        }
      }
    }
  }
}

// The long cache of a decode step: one query, 65536 keys, against naive (a few seconds at most).
TYPED_TEST(Decode, LongCacheOneQuery) {
  using T = TypeParam;
  const AttentionShape shape{.batch = 1, .heads = 2, .seq_q = 1, .seq_k = 65536, .head_dim = 64};
  Problem<T> p = make_problem<T>(shape, kSeed + 61);
  p.scale = T{1};  // scores up to ~8: a few keys stand out of the 65536
  const Fwd<T> r = forward(decode(), p, Mask::none(), AttentionOptions{.threads = 2});
  const Fwd<T> nv = forward(naive(), p, Mask::none(), AttentionOptions{.threads = 2});
  EXPECT_LE(norm_rel_err(r.out, nv.out), tol<T>());
  EXPECT_LE(norm_rel_err(r.lse, nv.lse), tol<T>());
  const Fwd<T> w = forward(decode(), p, Mask::causal_sliding_window(1000), AttentionOptions{.threads = 2});
  const Fwd<T> nw = forward(naive(), p, Mask::causal_sliding_window(1000), AttentionOptions{.threads = 2});
  EXPECT_LE(norm_rel_err(w.out, nw.out), tol<T>());
  EXPECT_LE(norm_rel_err(w.lse, nw.lse), tol<T>());
}

TEST(DecodeRegistration, ForwardOnlyWithItsFeaturesAndNoDropout) {
  const AttentionImpl& impl = decode();
  EXPECT_TRUE(impl.supports<float>());
  EXPECT_TRUE(impl.supports<double>());
  EXPECT_FALSE(impl.has_backward<float>());
  EXPECT_FALSE(impl.has_backward<double>());
  for (AttentionFeature f : {AttentionFeature::grouped_query, AttentionFeature::variable_length, AttentionFeature::alibi,
                             AttentionFeature::softcap, AttentionFeature::sinks}) {
    EXPECT_TRUE(impl.supports_features(attention_feature_bit(f))) << to_string(f);
  }
  EXPECT_FALSE(impl.supports_features(attention_feature_bit(AttentionFeature::dropout)));
  const AttentionShape shape{.batch = 1, .heads = 1, .seq_q = 1, .seq_k = 8, .head_dim = 4};
  const Problem<float> p = make_problem<float>(shape, kSeed);
  std::vector<float> out(p.q.size());
  std::vector<RowStats<float>> stats(1);
  AttentionOptions o;
  o.features.dropout_p = 0.1;
  try {
    decode_attention_forward<float>(shape, Mask::none(), p.scale, p.q.data(), p.k.data(), p.v.data(), out.data(),
                                    stats.data(), o);
    ADD_FAILURE() << "dropout accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("decode_attention_forward"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("dropout"), std::string::npos) << e.what();
  }
  EXPECT_THROW(run_forward<float>(impl, shape, Mask::none(), p.scale, p.q.data(), p.k.data(), p.v.data(), out.data(),
                                  stats.data(), o),
               std::invalid_argument);
}

// The chunk size depends on Nk only: at least 256 keys, at most 64 chunks.
TEST(DecodeRegistration, ChunkKeysFromTheCacheLength) {
  EXPECT_EQ(decode_chunk_keys(1), 256);
  EXPECT_EQ(decode_chunk_keys(4096), 256);
  EXPECT_EQ(decode_chunk_keys(16384), 256);
  EXPECT_EQ(decode_chunk_keys(16385), 512);
  EXPECT_EQ(decode_chunk_keys(65536), 1024);
}

}  // namespace
}  // namespace ped::test
