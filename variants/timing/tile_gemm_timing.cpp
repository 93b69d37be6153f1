// LIBXSMM against OpenBLAS on the attention kernels' tile GEMMs (not a test, not a benchmark suite;
// built only when LIBXSMM is found). Each row is one call of variants/tile_ops.hpp for a tile of
// `tile` queries by `tile` keys at head dim d, with its transposes, leading dimensions, alpha
// (scale = 1/sqrt(d) or 1) and beta:
//   S  = s Q K^T      nt (tile, tile, d)  beta 0   (forward scores; backward P recompute)
//   O += P V          nn (tile, d, tile)  beta 1
//   dV += P^T dO      tn (tile, d, tile)  beta 1
//   dP = dO V^T       nt (tile, tile, d)  beta 0
//   dK += s dS^T Q    tn (tile, d, tile)  beta 1
//   dQ += s dS K      nn (tile, d, tile)  beta 1
// OpenBLAS runs single-threaded (as inside the kernels' OpenMP regions); at T threads each thread
// repeats the call on its own operands and the rate is the sum of the threads' rates. Time is each
// thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so that time the thread spends descheduled on a shared
// machine does not count. The libraries alternate, round by round, in one process; a rate is the
// best of the rounds.
//   blas   OpenBLAS cblas_?gemm, as variants/kernels.hpp calls it
//   xsmm   variants/xsmm_gemm.hpp, what the kernels run under PED_LIBXSMM: LIBXSMM's kernel looked
//          up in its registry on every call, plus the copies the row-major forms need (alpha B^T
//          for nt, alpha B where alpha != 1)
//   kern   the bare LIBXSMM kernel (nn and tn with alpha 1 only): pointer fetched once, no copies
//   first  microseconds of the first LIBXSMM call of the row: code generation where the shape is
//          new to the process (rows sharing a kernel shape reuse it), plus one product
// Usage: ped_tile_gemm_timing [threads=1,2] [rounds=10] [ms=10]   (ms: minimum CPU time per measurement)
#include <cblas.h>
#include <libxsmm.h>
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/cli_checks.hpp"
#include "variants/xsmm_gemm.hpp"

namespace {

using ped::detail::xsmm::dispatch;
using ped::detail::xsmm::Kernel;

void blas(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void blas(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha, const double* a, int lda,
          const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

enum class Op { nn, nt, tn };

struct Case {
  const char* name;
  Op op;
  int m, n, k;
  bool scaled;  // alpha = 1/sqrt(d), else 1
  bool beta1;
  int tile, d;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (int tile : {128, 64}) {
    for (int d : {64, 128}) {
      out.push_back({"S=sQK^T", Op::nt, tile, tile, d, true, false, tile, d});
      out.push_back({"O+=PV", Op::nn, tile, d, tile, false, true, tile, d});
      out.push_back({"dV+=P^TdO", Op::tn, tile, d, tile, false, true, tile, d});
      out.push_back({"dP=dOV^T", Op::nt, tile, tile, d, false, false, tile, d});
      out.push_back({"dK+=sdS^TQ", Op::tn, tile, d, tile, true, true, tile, d});
      out.push_back({"dQ+=sdSK", Op::nn, tile, d, tile, true, true, tile, d});
    }
  }
  return out;
}

const char* op_name(Op op) { return op == Op::nn ? "nn" : op == Op::nt ? "nt" : "tn"; }

// Row-major operand sizes of a case: A, B, C with tight leading dimensions (as the kernels call).
template <class T>
struct Operands {
  std::vector<T> a, b, c;
  int lda, ldb, ldc;
  Operands(const Case& cs, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    const std::size_t am = cs.op == Op::tn ? cs.k : cs.m, ak = cs.op == Op::tn ? cs.m : cs.k;
    const std::size_t bm = cs.op == Op::nt ? cs.n : cs.k, bk = cs.op == Op::nt ? cs.k : cs.n;
    a.resize(am * ak);
    b.resize(bm * bk);
    c.resize(static_cast<std::size_t>(cs.m) * cs.n);
    lda = static_cast<int>(ak);
    ldb = static_cast<int>(bk);
    ldc = cs.n;
    for (T& x : a) x = static_cast<T>(u(rng));
    for (T& x : b) x = static_cast<T>(u(rng));
    for (T& x : c) x = static_cast<T>(u(rng));
  }
};

enum class Impl { blas, xsmm, kern };

template <class T>
void call(Impl impl, const Case& cs, T alpha, T beta, Operands<T>& o, Kernel<T> kern) {
  const int m = cs.m, n = cs.n, k = cs.k;
  switch (impl) {
    case Impl::blas:
      blas(cs.op == Op::tn ? CblasTrans : CblasNoTrans, cs.op == Op::nt ? CblasTrans : CblasNoTrans, m, n, k, alpha,
           o.a.data(), o.lda, o.b.data(), o.ldb, beta, o.c.data(), o.ldc);
      return;
    case Impl::xsmm:
      if (cs.op == Op::nn)
        ped::detail::xsmm::gemm_nn(m, n, k, alpha, o.a.data(), o.lda, o.b.data(), o.ldb, beta, o.c.data(), o.ldc);
      if (cs.op == Op::nt)
        ped::detail::xsmm::gemm_nt(m, n, k, alpha, o.a.data(), o.lda, o.b.data(), o.ldb, beta, o.c.data(), o.ldc);
      if (cs.op == Op::tn)
        ped::detail::xsmm::gemm_tn(m, n, k, alpha, o.a.data(), o.lda, o.b.data(), o.ldb, beta, o.c.data(), o.ldc);
      return;
    case Impl::kern:
      kern(o.b.data(), o.a.data(), o.c.data());
      return;
  }
}

// CPU time of the calling thread, in seconds: the time the thread ran, whatever else the machine ran.
double thread_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// GFLOP/s of `threads` threads each repeating the call on its own operands for at least `ms` of
// its own CPU time; the sum of the threads' rates.
template <class T>
double rate(Impl impl, const Case& cs, T alpha, T beta, std::vector<Operands<T>>& ops, Kernel<T> kern, int threads,
            double ms) {
  std::vector<double> rates(static_cast<std::size_t>(threads));
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    Operands<T>& o = ops[static_cast<std::size_t>(t)];
    call(impl, cs, alpha, beta, o, kern);  // warm-up
    long calls = 0;
    const double t0 = thread_seconds();
    double elapsed = 0;
    do {
      for (int r = 0; r < 4; ++r) call(impl, cs, alpha, beta, o, kern);
      calls += 4;
      elapsed = thread_seconds() - t0;
    } while (elapsed * 1e3 < ms);
    rates[static_cast<std::size_t>(t)] = 2.0 * cs.m * cs.n * double(cs.k) * double(calls) / elapsed / 1e9;
  }
  double sum = 0;
  for (double r : rates) sum += r;
  return sum;
}

// Largest |xsmm - blas| / max |blas| over C after one call on equal inputs; first_us: the time of
// that LIBXSMM call, which generates the kernel where the process has not seen its shape before.
template <class T>
double difference(const Case& cs, T alpha, T beta, std::mt19937_64& rng, double& first_us) {
  Operands<T> x(cs, rng);
  Operands<T> y = x;
  call<T>(Impl::blas, cs, alpha, beta, x, nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  call<T>(Impl::xsmm, cs, alpha, beta, y, nullptr);
  first_us = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * 1e6;
  double diff = 0, size = 0;
  for (std::size_t i = 0; i < x.c.size(); ++i) {
    diff = std::max(diff, std::abs(double(x.c[i]) - double(y.c[i])));
    size = std::max(size, std::abs(double(x.c[i])));
  }
  return diff / size;
}

template <class T>
void run(const char* type, const std::vector<int>& thread_counts, int rounds, double ms) {
  std::mt19937_64 rng(7);
  for (const Case& cs : cases()) {
    const T alpha = cs.scaled ? static_cast<T>(1.0 / std::sqrt(double(cs.d))) : T{1};
    const T beta = cs.beta1 ? T{1} : T{0};
    double first_us = 0;
    const double diff = difference<T>(cs, alpha, beta, rng, first_us);
    // The bare kernel (nn, tn with alpha 1): column-major (n, m, k) on (b, a).
    const bool bare = !cs.scaled && cs.op != Op::nt;
    const Kernel<T> kern =
        bare ? dispatch(T{}, cs.n, cs.m, cs.k, cs.n, cs.op == Op::nn ? cs.k : cs.m, cs.n, cs.beta1, cs.op == Op::tn)
             : nullptr;
    for (int threads : thread_counts) {
      std::vector<Operands<T>> ops;
      for (int t = 0; t < threads; ++t) ops.emplace_back(cs, rng);
      double best[3] = {0, 0, 0};
      for (int r = 0; r < rounds; ++r) {
        for (Impl impl : {Impl::blas, Impl::xsmm, Impl::kern}) {
          if (impl == Impl::kern && !bare) continue;
          const int i = static_cast<int>(impl);
          best[i] = std::max(best[i], rate<T>(impl, cs, alpha, beta, ops, kern, threads, ms));
        }
      }
      std::printf("%-6s %2d %4d %3d  %-11s %s %3dx%3dx%3d  beta %d  %8.1f %8.1f %6.2f  ", type, threads, cs.tile, cs.d,
                  cs.name, op_name(cs.op), cs.m, cs.n, cs.k, cs.beta1 ? 1 : 0, best[0], best[1], best[1] / best[0]);
      if (bare && kern != nullptr) {
        std::printf("%8.1f %6.2f", best[2], best[2] / best[0]);
      } else {
        std::printf("%8s %6s", "-", "-");
      }
      std::printf("  %8.1f  %.1e\n", first_us, diff);
      std::fflush(stdout);
    }
  }
}

// The thread counts of a comma-separated list, or none if any item is not an integer 1 to 1024.
std::vector<int> thread_list(const std::string& text) {
  std::vector<int> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const auto value = ped::parse_integer_in<int>(
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start), 1, 1024);
    if (!value) return {};
    out.push_back(*value);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = ped::cli;
  CLI::App app{"ped_tile_gemm_timing: LIBXSMM against OpenBLAS on the attention kernels' tile GEMMs"};
  std::string threads_text = "1,2";
  int rounds = 10;
  double ms = 10;
  app.add_option("threads", threads_text, "comma-separated thread counts, each 1 to 1024")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            return thread_list(text).empty()
                       ? "expected a comma-separated list of integers 1 to 1024, got '" + text + "'"
                       : "";
          },
          "T[,T...]"))
      ->capture_default_str();
  app.add_option("rounds", rounds, "rounds (best of)")->check(cli::integer_in(1, 1000))->capture_default_str();
  app.add_option("ms", ms, "minimum thread CPU milliseconds per measurement")
      ->check(cli::real_in(1, false, 60000))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;
  }
  const std::vector<int> thread_counts = thread_list(threads_text);
  openblas_set_num_threads(1);
  libxsmm_init();
  std::printf(
      "GFLOP/s = 2 m n k calls / thread CPU time, summed over threads; ratio = LIBXSMM / OpenBLAS; first_us: first "
      "LIBXSMM call of the row (with code generation where the shape is new)\n");
  std::printf("%-6s %2s %4s %3s  %-11s %s %11s  %6s  %8s %8s %6s  %8s %6s  %8s  %s\n", "type", "T", "tile", "d", "call",
              "op", "m x n x k", "", "blas", "xsmm", "ratio", "kern", "ratio", "first_us", "max rel diff");
  run<float>("float", thread_counts, rounds, ms);
  run<double>("double", thread_counts, rounds, ms);
  libxsmm_finalize();
  return 0;
}
