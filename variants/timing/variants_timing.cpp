// One-shot timing of every variant, forward and backward (not a benchmark suite): the best of
// PED_REPS (default 3) runs each. B batch, H heads, N tokens (Nq = Nk), d head dim.
// Usage: ped_variants_timing [N=4096] [d=64] [threads=2] [B=1] [H=1] [mask=causal|none] [variants=naive,blocked,flash,sparse]
// Tiles: environment PED_TILE_Q, PED_TILE_K, PED_BLOCK_SIZE (default: the variants' own).
// Prints wall time and GFLOP/s with FlashAttention's FLOP model (forward 4 B H N^2 d, halved for
// causal; backward 2.5x forward) and the OpenBLAS SGEMM rate at the same thread count as ceiling.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "variants/attention.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// OpenBLAS SGEMM rate (GFLOP/s) of a 2048^3 product at `threads` threads: the in-run ceiling.
double sgemm_rate(int threads) {
  const int n = 2048;
  std::vector<float> a(static_cast<std::size_t>(n) * n, 0.5f), b(a), c(a);
  openblas_set_num_threads(threads);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * n * n * double(n) / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t n = argc > 1 ? std::atoll(argv[1]) : 4096;
  const std::int64_t d = argc > 2 ? std::atoll(argv[2]) : 64;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 2;
  const std::int64_t b = argc > 4 ? std::atoll(argv[4]) : 1;
  const std::int64_t h = argc > 5 ? std::atoll(argv[5]) : 1;
  const std::string mask_name = argc > 6 ? argv[6] : "causal";
  const std::string which = argc > 7 ? argv[7] : "naive,blocked,flash,sparse";
  const ped::Mask mask = mask_name == "none" ? ped::Mask::none() : ped::Mask::causal();
  const bool causal = mask_name != "none";

  const ped::AttentionShape shape{.batch = b, .heads = h, .seq_q = n, .seq_k = n, .head_dim = d};
  const std::size_t elems = static_cast<std::size_t>(b * h * n * d);
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> q(elems), k(elems), v(elems), dout(elems), out(elems), dq(elems), dk(elems), dv(elems);
  std::vector<ped::RowStats<float>> stats(static_cast<std::size_t>(b * h * n));
  for (auto* t : {&q, &k, &v, &dout}) {
    for (float& x : *t) x = u(rng);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  // Tile sizes from the environment (PED_TILE_Q, PED_TILE_K, PED_BLOCK_SIZE), for tuning runs.
  auto env = [](const char* name, std::int64_t fallback) {
    const char* s = std::getenv(name);
    return s != nullptr ? std::atoll(s) : fallback;
  };
  const ped::AttentionOptions opt{.threads = threads, .tile_q = env("PED_TILE_Q", 0), .tile_k = env("PED_TILE_K", 0),
                                  .block_size = env("PED_BLOCK_SIZE", 64)};
  const int reps = static_cast<int>(env("PED_REPS", 3));

  const double gemm = sgemm_rate(threads);
  const double fwd_flop = 4.0 * double(b * h) * double(n) * double(n) * double(d) * (causal ? 0.5 : 1.0);
  std::printf("B=%lld H=%lld N=%lld d=%lld mask=%s float threads=%d  OpenBLAS SGEMM %.1f GFLOP/s\n",
              static_cast<long long>(b), static_cast<long long>(h), static_cast<long long>(n),
              static_cast<long long>(d), mask_name.c_str(), threads, gemm);
  for (ped::Variant var : {ped::Variant::naive, ped::Variant::blocked, ped::Variant::flash, ped::Variant::sparse}) {
    if (which.find(ped::to_string(var)) == std::string::npos) continue;
    double tf = 1e30, tb = 1e30;  // best of `reps` runs: the machine may be shared
    for (int r = 0; r < reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      ped::attention_forward<float>(var, shape, mask, scale, q.data(), k.data(), v.data(), out.data(), stats.data(),
                                    opt);
      tf = std::min(tf, seconds_since(t0));
      t0 = std::chrono::steady_clock::now();
      ped::attention_backward<float>(var, shape, mask, scale, q.data(), k.data(), v.data(), out.data(), stats.data(),
                                     dout.data(), dq.data(), dk.data(), dv.data(), opt);
      tb = std::min(tb, seconds_since(t0));
    }
    std::printf("%-8s forward %9.2f ms %7.1f GFLOP/s (%5.1f%% of SGEMM)   backward %9.2f ms %7.1f GFLOP/s (%5.1f%%)\n",
                ped::to_string(var), tf * 1e3, fwd_flop / tf / 1e9, 100.0 * fwd_flop / tf / 1e9 / gemm, tb * 1e3,
                2.5 * fwd_flop / tb / 1e9, 100.0 * 2.5 * fwd_flop / tb / 1e9 / gemm);
  }
  return 0;
}
