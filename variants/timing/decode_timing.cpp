// One-shot timing of a decode step (not a benchmark suite): flash_decode against flash, float, one
// query token per head against a long cache. B = 1, H = 8 heads, d = 64, H_kv in {8, 2},
// Nk in {4096, 8192, 16384, 32768, 65536}, mask none.
// Usage: ped_decode_timing [threads=2] [reps=7]
// Per case, the best of `reps` calls of each kernel after one warm-up call each, the two kernels
// alternating call by call (a shared machine's load then hits both alike), each call on another copy
// of k, v (copies rotate over at least 256 MiB, so that the cache is read from memory as in a real
// decode step):
//   tokens/s     query tokens per second, Nq B H / time;
//   KV GB/s      bytes of k and v read, 2 B H_kv Nk d 4 / time;
//   of copy      that rate over the copy bandwidth measured first in the same process: a
//                memcpy-style copy of 256 MiB on `threads` threads, counting bytes read + written;
//   of read      that rate over the read bandwidth: a sum over 256 MiB on `threads` threads (a decode
//                step only reads, so this is the bound it can reach).
// The last column is the largest |out difference| between the two kernels.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "variants/attention.hpp"
#include "variants/registry.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Bytes read + written per second by a parallel copy of 256 MiB, best of 5.
double copy_bandwidth(int threads) {
  const std::size_t n = std::size_t{256} << 20;
  std::vector<char> a(n, 1), b(n, 2);
  double best = 1e30;
  for (int r = 0; r < 6; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    {
      const std::size_t per = n / static_cast<std::size_t>(omp_get_num_threads());
      const std::size_t from = per * static_cast<std::size_t>(omp_get_thread_num());
      std::memcpy(b.data() + from, a.data() + from, per);
    }
    if (r > 0) best = std::min(best, seconds_since(t0));
  }
  return 2.0 * static_cast<double>(n) / best;
}

// Bytes read per second by a parallel sum over 256 MiB of float, best of 5.
double read_bandwidth(int threads) {
  const std::size_t n = (std::size_t{256} << 20) / sizeof(float);
  std::vector<float> a(n, 1.0f);
  double best = 1e30, sink = 0;
  for (int r = 0; r < 6; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    float total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      const std::size_t per = n / static_cast<std::size_t>(omp_get_num_threads());
      const float* x = a.data() + per * static_cast<std::size_t>(omp_get_thread_num());
      float lanes[32] = {};  // independent sums: vectorised without reassociating one chain
      for (std::size_t e = 0; e + 32 <= per; e += 32) {
        for (int l = 0; l < 32; ++l) lanes[l] += x[e + static_cast<std::size_t>(l)];
      }
      for (float l : lanes) total += l;
    }
    if (r > 0) best = std::min(best, seconds_since(t0));
    sink += total;
  }
  if (sink < 0) std::printf("%g\n", sink);  // keeps the sums
  return static_cast<double>(n * sizeof(float)) / best;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 7;
  if (threads < 1 || reps < 1) {
    std::fprintf(stderr, "usage: ped_decode_timing [threads >= 1] [reps >= 1]\n");
    return 2;
  }
  const double copy = copy_bandwidth(threads), read = read_bandwidth(threads);
  std::printf("copy bandwidth (read + write): %.2f GB/s, read bandwidth %.2f GB/s, %d threads\n", copy / 1e9,
              read / 1e9, threads);
  std::printf("%-12s %6s %5s %10s %12s %9s %8s %8s %10s\n", "kernel", "Nk", "H_kv", "ms", "tokens/s", "KV GB/s",
              "of copy", "of read", "max|diff|");
  const std::int64_t heads = 8, d = 64;
  const ped::AttentionImpl& decode = ped::attention_impl("flash_decode");
  const ped::AttentionImpl& flash = ped::attention_impl("flash");
  std::mt19937_64 rng(20251206);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (std::int64_t heads_kv : {8, 2}) {
    for (std::int64_t nk : {4096, 8192, 16384, 32768, 65536}) {
      const ped::AttentionShape shape{.batch = 1, .heads = heads, .seq_q = 1, .seq_k = nk, .head_dim = d,
                                      .heads_kv = heads_kv};
      const std::size_t kv = static_cast<std::size_t>(heads_kv * nk * d);
      const double kv_bytes = 2.0 * static_cast<double>(kv) * sizeof(float);
      const std::size_t copies = static_cast<std::size_t>(std::max(1.0, std::ceil(256.0 * (1 << 20) / kv_bytes)));
      std::vector<float> k(kv * copies), v(kv * copies), q(static_cast<std::size_t>(heads * d));
      for (float& x : k) x = u(rng);
      for (float& x : v) x = u(rng);
      for (float& x : q) x = u(rng);
      const float scale = 1.0f / std::sqrt(static_cast<float>(d));
      std::vector<float> out_decode(q.size()), out_flash(q.size());
      std::vector<ped::RowStats<float>> stats(static_cast<std::size_t>(heads));
      ped::AttentionOptions options{.threads = threads};
      const ped::AttentionImpl* impls[2] = {&decode, &flash};
      std::vector<float>* outs[2] = {&out_decode, &out_flash};
      double best[2] = {1e30, 1e30};
      for (int r = 0; r <= reps; ++r) {
        for (int x = 0; x < 2; ++x) {
          const std::size_t c = static_cast<std::size_t>(2 * r + x) % copies;
          const auto t0 = std::chrono::steady_clock::now();
          ped::run_forward<float>(*impls[x], shape, ped::Mask::none(), scale, q.data(), k.data() + c * kv,
                                  v.data() + c * kv, outs[x]->data(), stats.data(), options);
          if (r > 0) best[x] = std::min(best[x], seconds_since(t0));
        }
      }
      for (int x = 0; x < 2; ++x) {  // both on the same copy for the comparison
        ped::run_forward<float>(*impls[x], shape, ped::Mask::none(), scale, q.data(), k.data(), v.data(),
                                outs[x]->data(), stats.data(), options);
      }
      double diff = 0;
      for (std::size_t e = 0; e < out_decode.size(); ++e) {
        diff = std::max(diff, static_cast<double>(std::fabs(out_decode[e] - out_flash[e])));
      }
      for (int x = 0; x < 2; ++x) {
        const double rate = kv_bytes / best[x];
        std::printf("%-12s %6lld %5lld %10.3f %12.0f %9.2f %7.1f%% %7.1f%% %10.2e\n", impls[x]->name.c_str(),
                    static_cast<long long>(nk), static_cast<long long>(heads_kv), best[x] * 1e3,
                    static_cast<double>(heads) / best[x], rate / 1e9, 100.0 * rate / copy, 100.0 * rate / read, diff);
      }
    }
  }
  return 0;
}
