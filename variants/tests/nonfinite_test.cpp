// Non-finite inputs: every output that depends on a NaN (or an infinity) is NaN, and only those, the
// same in every variant (semantics in variants/attention.hpp). The oracle is the textbook algorithm
// in double with plain IEEE arithmetic over the visible pairs only, no shortcuts: a NaN reaches
// exactly what depends on it. B batch, H heads, Nq/Nk query/key tokens, d head dim.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "variants/tests/test_util.hpp"

namespace ped::test {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Oracle {
  std::vector<double> out, lse, dq, dk, dv;
};

// The forward and backward formulas of variants/attention.hpp, per (b, h), in double. The row max
// propagates NaN (std::max would drop it); a row with no visible key gets out 0, lse -inf, no
// gradient. out_in/lse_in replace the forward's results in the backward when given (their NaNs
// then enter D and P).
template <class T>
Oracle oracle(const Problem<T>& p, const Mask& mask, const std::vector<double>* out_in = nullptr,
              const std::vector<double>* lse_in = nullptr) {
  const AttentionShape& s = p.shape;
  const std::int64_t nq = s.seq_q, nk = s.seq_k, d = s.head_dim, bh = s.batch * s.heads;
  Oracle o{std::vector<double>(p.q.size(), 0.0), std::vector<double>(static_cast<std::size_t>(bh * nq)),
           std::vector<double>(p.q.size(), 0.0), std::vector<double>(p.k.size(), 0.0),
           std::vector<double>(p.k.size(), 0.0)};
  auto at = [d](const std::vector<T>& x, std::int64_t row, std::int64_t c) {
    return static_cast<double>(x[row * d + c]);
  };
  std::vector<double> prob(static_cast<std::size_t>(nk));
  for (std::int64_t x = 0; x < bh; ++x) {
    for (std::int64_t i = 0; i < nq; ++i) {
      const std::int64_t qi = x * nq + i;
      double m = -std::numeric_limits<double>::infinity();
      bool any = false;
      for (std::int64_t j = 0; j < nk; ++j) {
        if (!mask.visible(i, j, nq, nk)) continue;
        double dot = 0;
        for (std::int64_t c = 0; c < d; ++c) dot += at(p.q, qi, c) * at(p.k, x * nk + j, c);
        prob[j] = static_cast<double>(p.scale) * dot;
        m = (std::isnan(prob[j]) || std::isnan(m)) ? kNaN : std::max(m, prob[j]);
        any = true;
      }
      if (!any) {
        o.lse[qi] = -std::numeric_limits<double>::infinity();
        continue;
      }
      double sum = 0;
      for (std::int64_t j = 0; j < nk; ++j) {
        if (!mask.visible(i, j, nq, nk)) continue;
        prob[j] = std::exp(prob[j] - m);
        sum += prob[j];
      }
      double lse = m + std::log(sum);
      for (std::int64_t j = 0; j < nk; ++j) {
        if (mask.visible(i, j, nq, nk)) prob[j] /= sum;
      }
      for (std::int64_t j = 0; j < nk; ++j) {
        if (!mask.visible(i, j, nq, nk)) continue;
        for (std::int64_t c = 0; c < d; ++c) o.out[qi * d + c] += prob[j] * at(p.v, x * nk + j, c);
      }
      o.lse[qi] = lse;
      // backward, from the given out and lse where there are some: P = exp(S - lse)
      if (lse_in != nullptr && (*lse_in)[qi] != lse) {
        const double l = (*lse_in)[qi];
        for (std::int64_t j = 0; j < nk; ++j) {
          if (mask.visible(i, j, nq, nk)) prob[j] = prob[j] * std::exp(lse - l);
        }
      }
      double dvec = 0;  // D_i = dO_i . O_i
      for (std::int64_t c = 0; c < d; ++c) {
        dvec += at(p.dout, qi, c) * (out_in != nullptr ? (*out_in)[qi * d + c] : o.out[qi * d + c]);
      }
      for (std::int64_t j = 0; j < nk; ++j) {
        if (!mask.visible(i, j, nq, nk)) continue;
        const std::int64_t kj = x * nk + j;
        double dp = 0;
        for (std::int64_t c = 0; c < d; ++c) dp += at(p.dout, qi, c) * at(p.v, kj, c);
        const double ds = prob[j] * (dp - dvec);
        for (std::int64_t c = 0; c < d; ++c) {
          o.dv[kj * d + c] += prob[j] * at(p.dout, qi, c);
          o.dq[qi * d + c] += static_cast<double>(p.scale) * ds * at(p.k, kj, c);
          o.dk[kj * d + c] += static_cast<double>(p.scale) * ds * at(p.q, qi, c);
        }
      }
    }
  }
  return o;
}

// Same NaN positions as the oracle, and the finite values close to it.
template <class T>
void expect_matches(const std::vector<T>& ours, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(ours.size(), want.size()) << what;
  std::int64_t nan_want = 0, nan_ours = 0, mismatched = 0;
  double num = 0, den = 0;
  for (std::size_t e = 0; e < want.size(); ++e) {
    const bool w = std::isnan(want[e]);
    const bool g = std::isnan(static_cast<double>(ours[e]));
    nan_want += w;
    nan_ours += g;
    mismatched += w != g;
    if (!w && !g && std::isfinite(want[e])) {
      const double diff = static_cast<double>(ours[e]) - want[e];
      num += diff * diff;
      den += want[e] * want[e];
    }
  }
  EXPECT_EQ(mismatched, 0) << what << ": " << nan_ours << " NaN in ours, " << nan_want << " in the oracle";
  const double tol = std::is_same_v<T, double> ? 1e-12 : 1e-5;
  EXPECT_LE(std::sqrt(num), tol * std::max(std::sqrt(den), 1.0)) << what << ": finite values";
}

// Every variant, default and small tiles, against the oracle; returns the oracle's NaN count.
template <class T>
std::int64_t check(const Problem<T>& p, const Mask& mask, const std::string& label) {
  const Oracle want = oracle(p, mask);
  std::int64_t nan_total = 0;
  for (const auto* v : {&want.out, &want.lse, &want.dq, &want.dk, &want.dv}) {
    for (double x : *v) nan_total += std::isnan(x);
  }
  for (const AttentionImpl* v : builtin_impls()) {
    for (const AttentionOptions& opt :
         {AttentionOptions{}, AttentionOptions{.tile_q = 8, .tile_k = 8, .block_size = 8}}) {
      SCOPED_TRACE(label + " " + v->name + " " + mask.name() + " tile_q=" + std::to_string(opt.tile_q));
      const Result<T> r = run<T>(*v, p, mask, opt);
      expect_matches(r.out, want.out, "out");
      expect_matches(r.lse, want.lse, "lse");
      if (!v->has_backward<T>()) continue;  // forward only (flash_decode)
      expect_matches(r.dq, want.dq, "dq");
      expect_matches(r.dk, want.dk, "dk");
      expect_matches(r.dv, want.dv, "dv");
    }
  }
  return nan_total;
}

template <class T>
class NonFinite : public ::testing::Test {};
using Dtypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(NonFinite, Dtypes);

// Nq > Nk with the causal mask: queries 0 .. 6 see no key. Two (b, h) slices: the other stays clean.
const AttentionShape kShape{.batch = 1, .heads = 2, .seq_q = 40, .seq_k = 33, .head_dim = 5};

std::vector<Mask> masks() {
  return {Mask::causal(), Mask::none(), Mask::sliding_window(3, 2), Mask::bigbird(4, 1, 1, 1, 7),
          Mask::causal() & Mask::strided(3, false)};
}

const Problem<double>& base() {
  static const Problem<double> p = make_problem<double>(kShape, kSeed);
  return p;
}

template <class T>
Problem<T> cast(const Problem<double>& p) {
  Problem<T> r{p.shape, static_cast<T>(p.scale), {}, {}, {}, {}};
  r.q.assign(p.q.begin(), p.q.end());
  r.k.assign(p.k.begin(), p.k.end());
  r.v.assign(p.v.begin(), p.v.end());
  r.dout.assign(p.dout.begin(), p.dout.end());
  return r;
}

// Element (b h slice x, row, component c) of a (B, H, N, d) tensor.
std::size_t idx(std::int64_t x, std::int64_t n, std::int64_t row, std::int64_t c) {
  return static_cast<std::size_t>((x * n + row) * kShape.head_dim + c);
}

// Row 3 sees no key under the causal mask (and its intersection with strided): there a NaN in q_3 or
// dout_3 reaches nothing, while the other masks let it through.
TYPED_TEST(NonFinite, NaNInAQueryRowPoisonsItsOutputAndWhatItTouches) {
  using T = TypeParam;
  for (std::int64_t row : {3, 20, 39}) {
    Problem<T> p = cast<T>(base());
    p.q[idx(1, kShape.seq_q, row, 2)] = std::numeric_limits<T>::quiet_NaN();
    std::int64_t poisoned = 0;
    for (const Mask& m : masks()) poisoned += check(p, m, "q row " + std::to_string(row));
    EXPECT_GT(poisoned, 0);
  }
}

TYPED_TEST(NonFinite, NaNInAKeyPoisonsTheRowsThatSeeIt) {
  using T = TypeParam;
  Problem<T> p = cast<T>(base());
  p.k[idx(0, kShape.seq_k, 25, 0)] = std::numeric_limits<T>::quiet_NaN();
  for (const Mask& m : masks()) EXPECT_GT(check(p, m, "k row 25"), 0);
}

// Under the causal mask the key is hidden from every query before it: those stay finite.
TYPED_TEST(NonFinite, NaNInAValueReachesOnlyTheQueriesThatSeeIt) {
  using T = TypeParam;
  Problem<T> p = cast<T>(base());
  p.v[idx(1, kShape.seq_k, 30, 4)] = std::numeric_limits<T>::quiet_NaN();
  for (const Mask& m : masks()) EXPECT_GT(check(p, m, "v row 30"), 0);
}

TYPED_TEST(NonFinite, NaNInDoutReachesOnlyTheGradientsThatDependOnIt) {
  using T = TypeParam;
  for (std::int64_t row : {3, 12, 39}) {
    Problem<T> p = cast<T>(base());
    p.dout[idx(0, kShape.seq_q, row, 1)] = std::numeric_limits<T>::quiet_NaN();
    std::int64_t poisoned = 0;
    for (const Mask& m : masks()) poisoned += check(p, m, "dout row " + std::to_string(row));
    EXPECT_GT(poisoned, 0);
  }
}

// Infinities are non-finite inputs like NaN: the same outputs become NaN, the others keep their values.
TYPED_TEST(NonFinite, InfinitiesActLikeNaN) {
  using T = TypeParam;
  for (T bad : {std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity()}) {
    for (int which = 0; which < 4; ++which) {
      Problem<T> with_inf = cast<T>(base()), with_nan = cast<T>(base());
      std::vector<T>* a[4] = {&with_inf.q, &with_inf.k, &with_inf.v, &with_inf.dout};
      std::vector<T>* b[4] = {&with_nan.q, &with_nan.k, &with_nan.v, &with_nan.dout};
      const std::size_t e = idx(1, which == 1 || which == 2 ? kShape.seq_k : kShape.seq_q, 28, 3);
      (*a[which])[e] = bad;
      (*b[which])[e] = std::numeric_limits<T>::quiet_NaN();
      for (const AttentionImpl* v : builtin_impls()) {
        SCOPED_TRACE(v->name + " input " + std::to_string(which) + " " + std::to_string(bad));
        const Result<T> ri = run<T>(*v, with_inf, Mask::causal()), rn = run<T>(*v, with_nan, Mask::causal());
        for (auto [x, y] : {std::pair{&ri.out, &rn.out}, std::pair{&ri.dq, &rn.dq}, std::pair{&ri.dk, &rn.dk},
                            std::pair{&ri.dv, &rn.dv}}) {
          ASSERT_EQ(x->size(), y->size());
          for (std::size_t k = 0; k < x->size(); ++k) {
            ASSERT_EQ(std::isnan((*x)[k]), std::isnan((*y)[k])) << k;
            if (!std::isnan((*x)[k])) {
              ASSERT_EQ((*x)[k], (*y)[k]) << k;
            }
          }
        }
      }
    }
  }
}

// The backward's own inputs out and stats: a NaN there poisons the gradients that use them.
TYPED_TEST(NonFinite, NaNInOutOrStatsPoisonsTheBackward) {
  using T = TypeParam;
  const Problem<T> p = cast<T>(base());
  const AttentionShape& s = p.shape;
  const Mask mask = Mask::causal();
  const std::int64_t x = 1, row = 22;
  for (int which = 0; which < 2; ++which) {
    for (const AttentionImpl* v : builtin_impls()) {
      if (!v->has_backward<T>()) continue;  // forward only (flash_decode): no backward to poison
      SCOPED_TRACE(v->name + (which == 0 ? " out" : " stats"));
      std::vector<T> out(p.q.size()), dq(p.q.size()), dk(p.k.size()), dv(p.v.size());
      std::vector<RowStats<T>> stats(static_cast<std::size_t>(s.batch * s.heads * s.seq_q));
      run_forward<T>(*v, s, mask, p.scale, p.q.data(), p.k.data(), p.v.data(), out.data(), stats.data());
      std::vector<double> out_in(out.begin(), out.end()), lse_in(stats.size());
      for (std::size_t i = 0; i < stats.size(); ++i) lse_in[i] = static_cast<double>(stats[i].lse());
      if (which == 0) {
        out[idx(x, s.seq_q, row, 0)] = std::numeric_limits<T>::quiet_NaN();
        out_in[idx(x, s.seq_q, row, 0)] = kNaN;
      } else {
        stats[x * s.seq_q + row].inv_sum = std::numeric_limits<T>::quiet_NaN();
        lse_in[x * s.seq_q + row] = kNaN;
      }
      run_backward<T>(*v, s, mask, p.scale, p.q.data(), p.k.data(), p.v.data(), out.data(), stats.data(),
                            p.dout.data(), dq.data(), dk.data(), dv.data());
      const Oracle want = oracle(p, mask, &out_in, &lse_in);
      expect_matches(dq, want.dq, "dq");
      expect_matches(dk, want.dk, "dk");
      expect_matches(dv, want.dv, "dv");
    }
  }
}

}  // namespace
}  // namespace ped::test
