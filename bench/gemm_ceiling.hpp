// The in-run ceiling: OpenBLAS SGEMM C = A B with M = N = K = size, at the run's thread count.
#pragma once

#include "bench/bench_config.hpp"

#include <cstdint>

namespace ped::bench {

// Best GFLOP/s (2 M N K / time) of repeated SGEMM calls over about `seconds`, after one warm-up.
// OpenBLAS runs with `threads` threads.
double measure_sgemm_gflops(std::int64_t size, int threads, double seconds = 0.5);

// gemm/sgemm/float/M:<m>/N:<n>/K:<k>/T:<t> (reports/ skips it; its gemm_gflops counter is the
// ceiling measured at startup, its FLOPS counter this benchmark's own rate).
void register_gemm_benchmark(const BenchConfig& config);

}  // namespace ped::bench
