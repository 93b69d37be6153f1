#include "bench/gemm_ceiling.hpp"

#include "bench/harness.hpp"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <vector>

namespace ped::bench {
namespace {

struct Gemm {
  int size;
  std::vector<float> a, b, c;  // (size, size) row-major
  explicit Gemm(std::int64_t n) : size(static_cast<int>(n)) {
    const auto count = static_cast<std::size_t>(n * n);
    a.resize(count);
    b.resize(count);
    c.resize(count);
    fill_uniform(a.data(), count, 11);
    fill_uniform(b.data(), count, 12);
  }
  void operator()() {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, size, size, size, 1.0f, a.data(), size, b.data(), size,
                0.0f, c.data(), size);
  }
  double flop() const { return 2.0 * size * static_cast<double>(size) * size; }
};

}  // namespace

double measure_sgemm_gflops(std::int64_t size, int threads, double seconds) {
  openblas_set_num_threads(threads);
  Gemm gemm(size);
  gemm();  // warm-up: page faults, OpenBLAS's thread pool
  using clock = std::chrono::steady_clock;
  double best = 0.0;
  const auto begin = clock::now();
  int calls = 0;
  while (calls < 3 || std::chrono::duration<double>(clock::now() - begin).count() < seconds) {
    const auto t0 = clock::now();
    gemm();
    const double elapsed = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::max(best, gemm.flop() / elapsed / 1e9);
    ++calls;
  }
  return best;
}

void register_gemm_benchmark(const BenchConfig& config) {
  std::ostringstream name;
  const std::int64_t n = config.gemm_size;
  name << "gemm/sgemm/float/M:" << n << "/N:" << n << "/K:" << n << "/T:" << config.threads;
  register_timed(name.str(), gemm_case_cost(config), [n](benchmark::State& state) {
    Gemm gemm(n);
    measured_loop(state, gemm);
    set_flop_counters(state, gemm.flop(), gemm.flop());
  });
}

}  // namespace ped::bench
