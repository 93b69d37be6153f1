// The tile GEMM wrappers of variants/kernels.hpp (gemm_nt, gemm_nn, gemm_tn), on whichever backend the
// build chose (LIBXSMM for tile shapes under PED_LIBXSMM, OpenBLAS otherwise), against a product
// accumulated in long double: every transpose, alpha 1 and not, beta 0, 1 and 0.5 (OpenBLAS's), tight
// and padded leading dimensions, tile shapes, ragged edge tiles and shapes above the tile limit.
// Also: beta 0 ignores C (NaN there does not leak), the padding between rows of C stays untouched,
// and the result is bitwise the same computed on any thread.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "variants/kernels.hpp"

namespace ped {
namespace {

enum class Op { nn, nt, tn };

struct Shape {
  int m, n, k;
};

template <class T>
struct Problem {
  Op op;
  int m, n, k, lda, ldb, ldc;
  T alpha, beta;
  std::vector<T> a, b, c;
};

template <class T>
Problem<T> make(Op op, Shape s, int pad, T alpha, T beta, unsigned seed) {
  Problem<T> p{op, s.m, s.n, s.k, 0, 0, 0, alpha, beta, {}, {}, {}};
  const int a_rows = op == Op::tn ? s.k : s.m, a_cols = op == Op::tn ? s.m : s.k;
  const int b_rows = op == Op::nt ? s.n : s.k, b_cols = op == Op::nt ? s.k : s.n;
  p.lda = a_cols + pad;
  p.ldb = b_cols + pad;
  p.ldc = s.n + pad;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  p.a.resize(static_cast<std::size_t>(a_rows) * p.lda);
  p.b.resize(static_cast<std::size_t>(b_rows) * p.ldb);
  p.c.resize(static_cast<std::size_t>(s.m) * p.ldc);
  for (T& x : p.a) x = static_cast<T>(u(rng));
  for (T& x : p.b) x = static_cast<T>(u(rng));
  for (T& x : p.c) x = static_cast<T>(u(rng));
  return p;
}

template <class T>
void run(Problem<T>& p) {
  switch (p.op) {
    case Op::nn:
      detail::gemm_nn(p.m, p.n, p.k, p.alpha, p.a.data(), p.lda, p.b.data(), p.ldb, p.beta, p.c.data(), p.ldc);
      return;
    case Op::nt:
      detail::gemm_nt(p.m, p.n, p.k, p.alpha, p.a.data(), p.lda, p.b.data(), p.ldb, p.beta, p.c.data(), p.ldc);
      return;
    case Op::tn:
      detail::gemm_tn(p.m, p.n, p.k, p.alpha, p.a.data(), p.lda, p.b.data(), p.ldb, p.beta, p.c.data(), p.ldc);
      return;
  }
}

template <class T>
T a_at(const Problem<T>& p, int i, int q) {
  return p.op == Op::tn ? p.a[static_cast<std::size_t>(q) * p.lda + i] : p.a[static_cast<std::size_t>(i) * p.lda + q];
}
template <class T>
T b_at(const Problem<T>& p, int q, int j) {
  return p.op == Op::nt ? p.b[static_cast<std::size_t>(j) * p.ldb + q] : p.b[static_cast<std::size_t>(q) * p.ldb + j];
}

std::string describe(Op op, Shape s, int pad, double alpha, double beta) {
  const char* name = op == Op::nn ? "nn" : op == Op::nt ? "nt" : "tn";
  return std::string(name) + " " + std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k) +
         " pad " + std::to_string(pad) + " alpha " + std::to_string(alpha) + " beta " + std::to_string(beta);
}

// |C - reference| <= 2 k eps (|alpha| sum |a b| + |beta c|) per element, the padding of C untouched.
template <class T>
void check_all_cases() {
  const T eps = std::numeric_limits<T>::epsilon();
  const std::vector<Shape> shapes{{128, 128, 64}, {128, 64, 128}, {128, 128, 128}, {64, 64, 64},   {64, 128, 64},
                                  {37, 53, 19},   {1, 1, 1},      {128, 7, 128},   {200, 130, 64}, {64, 64, 300}};
  unsigned seed = 1;
  for (Op op : {Op::nn, Op::nt, Op::tn}) {
    for (const Shape& s : shapes) {
      for (int pad : {0, 3}) {
        for (T alpha : {T{1}, T{0.125}, static_cast<T>(1 / std::sqrt(128.0))}) {
          for (T beta : {T{0}, T{1}, T{0.5}}) {
            Problem<T> p = make<T>(op, s, pad, alpha, beta, seed++);
            const std::vector<T> c0 = p.c;
            run(p);
            SCOPED_TRACE(describe(op, s, pad, alpha, beta));
            int bad = 0;
            for (int i = 0; i < s.m; ++i) {
              for (int j = 0; j < s.n; ++j) {
                long double sum = 0, mag = 0;
                for (int q = 0; q < s.k; ++q) {
                  const long double x = static_cast<long double>(a_at(p, i, q)) * b_at(p, q, j);
                  sum += x;
                  mag += std::abs(x);
                }
                const std::size_t at = static_cast<std::size_t>(i) * p.ldc + j;
                const long double want = alpha * sum + beta * static_cast<long double>(c0[at]);
                const long double bound = 2 * s.k * eps * (std::abs(alpha) * mag + std::abs(beta * c0[at]));
                if (!(std::abs(static_cast<long double>(p.c[at]) - want) <= bound) && bad++ < 3) {
                  ADD_FAILURE() << "C[" << i << ", " << j << "] = " << p.c[at] << ", want " << static_cast<double>(want)
                                << " within " << static_cast<double>(bound);
                }
              }
              for (int j = s.n; j < p.ldc; ++j) {
                const std::size_t at = static_cast<std::size_t>(i) * p.ldc + j;
                if (p.c[at] != c0[at] && bad++ < 3) ADD_FAILURE() << "padding C[" << i << ", " << j << "] written";
              }
            }
            EXPECT_EQ(bad, 0);
          }
        }
      }
    }
  }
}

TEST(TileGemm, MatchesReferenceFloat) { check_all_cases<float>(); }
TEST(TileGemm, MatchesReferenceDouble) { check_all_cases<double>(); }

// beta = 0 overwrites C whatever it held, NaN included (as BLAS does).
template <class T>
void check_beta_zero_ignores_c() {
  for (Op op : {Op::nn, Op::nt, Op::tn}) {
    for (const Shape& s : {Shape{128, 128, 64}, Shape{128, 64, 128}, Shape{37, 53, 19}}) {
      Problem<T> p = make<T>(op, s, 0, T{0.125}, T{0}, 7);
      std::fill(p.c.begin(), p.c.end(), std::numeric_limits<T>::quiet_NaN());
      run(p);
      SCOPED_TRACE(describe(op, s, 0, 0.125, 0));
      for (const T x : p.c) ASSERT_TRUE(std::isfinite(x));
    }
  }
}

TEST(TileGemm, BetaZeroIgnoresCFloat) { check_beta_zero_ignores_c<float>(); }
TEST(TileGemm, BetaZeroIgnoresCDouble) { check_beta_zero_ignores_c<double>(); }

#if defined(PED_LIBXSMM)
// LIBXSMM takes the tile shapes (every dimension 1 to 128, beta 0 or 1) and nothing else.
TEST(TileGemm, LibxsmmTakesTileShapesOnly) {
  EXPECT_TRUE(detail::xsmm::handles(128, 128, 64, 0.0f));
  EXPECT_TRUE(detail::xsmm::handles(128, 64, 128, 1.0));
  EXPECT_TRUE(detail::xsmm::handles(1, 1, 1, 1.0f));
  EXPECT_FALSE(detail::xsmm::handles(129, 64, 64, 0.0f));
  EXPECT_FALSE(detail::xsmm::handles(64, 129, 64, 0.0));
  EXPECT_FALSE(detail::xsmm::handles(64, 64, 129, 1.0f));
  EXPECT_FALSE(detail::xsmm::handles(0, 64, 64, 1.0f));
  EXPECT_FALSE(detail::xsmm::handles(64, 64, 64, 0.5f));
}
#endif

// The same product computed by each of 4 threads at once (each with its own C) is bitwise the
// serial result: per-thread scratch, one kernel per shape.
template <class T>
void check_same_on_every_thread() {
  for (Op op : {Op::nn, Op::nt, Op::tn}) {
    for (const Shape& s : {Shape{128, 128, 64}, Shape{128, 64, 128}, Shape{64, 64, 128}, Shape{37, 53, 19}}) {
      const Problem<T> base = make<T>(op, s, 0, static_cast<T>(1 / std::sqrt(128.0)), T{1}, 11);
      Problem<T> serial = base;
      run(serial);
      std::vector<Problem<T>> each(4, base);
#pragma omp parallel for num_threads(4) schedule(static, 1)
      for (int t = 0; t < 4; ++t) {
        for (int r = 0; r < 3; ++r) {  // repeated: the scratch is reused
          each[static_cast<std::size_t>(t)].c = base.c;
          run(each[static_cast<std::size_t>(t)]);
        }
      }
      SCOPED_TRACE(describe(op, s, 0, 1 / std::sqrt(128.0), 1));
      for (const Problem<T>& p : each) EXPECT_EQ(p.c, serial.c);
    }
  }
}

TEST(TileGemm, SameOnEveryThreadFloat) { check_same_on_every_thread<float>(); }
TEST(TileGemm, SameOnEveryThreadDouble) { check_same_on_every_thread<double>(); }

// With beta 0, alpha multiplies the finished sum, bitwise C = alpha * (A op B) as OpenBLAS computes
// it (not a sum of alpha-scaled terms): a score tile recomputed in a backward pass then stays with the
// rounding of the forward's wider product (verify's SdpaAccuracy, scores of 2e4 at scale 200).
template <class T>
void check_alpha_after_sum() {
  for (Op op : {Op::nn, Op::nt, Op::tn}) {
    for (const Shape& s : {Shape{100, 128, 8}, Shape{128, 128, 64}, Shape{128, 64, 128}, Shape{64, 64, 128}}) {
      for (T alpha : {T{200}, static_cast<T>(1 / std::sqrt(128.0))}) {
        Problem<T> scaled = make<T>(op, s, 0, alpha, T{0}, 31);
        Problem<T> plain = scaled;
        plain.alpha = T{1};
        run(scaled);
        run(plain);
        SCOPED_TRACE(describe(op, s, 0, alpha, 0));
        int bad = 0;
        for (std::size_t e = 0; e < plain.c.size(); ++e) {
          if (scaled.c[e] != alpha * plain.c[e] && bad++ < 3) {
            ADD_FAILURE() << "C[" << e << "] = " << scaled.c[e] << ", alpha * product " << alpha * plain.c[e];
          }
        }
      }
    }
  }
}

TEST(TileGemm, AlphaAfterTheSumFloat) { check_alpha_after_sum<float>(); }
TEST(TileGemm, AlphaAfterTheSumDouble) { check_alpha_after_sum<double>(); }

}  // namespace
}  // namespace ped
