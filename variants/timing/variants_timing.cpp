// One-shot timing of every variant, forward and backward (not a benchmark suite): the best of
// PED_REPS (default 3) runs each. B batch, H heads, N tokens (Nq = Nk), d head dim.
// Usage: ped_variants_timing [N=4096] [d=64] [threads=2] [B=1] [H=1] [mask=causal] [variants=every registered implementation]
// mask: any text of Mask::parse (core/mask.hpp), e.g. none, causal, sliding_window(left=256,right=0).
// Tiles: environment PED_TILE_Q, PED_TILE_K, PED_BLOCK_SIZE (default: the variants' own).
// Prints wall time and GFLOP/s with FlashAttention's FLOP model over the visible pairs (forward
// 4 B H P d with P the mask's visible (query, key) pairs, N^2 without a mask; backward 2.5x forward) and the OpenBLAS SGEMM rate at the same thread count as ceiling.
// For the implementations that time their phases (AttentionOptions::phases), one more forward and
// backward each print where the time goes (percent of threads x wall time per phase).
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/cli_checks.hpp"
#include "variants/attention.hpp"
#include "variants/registry.hpp"

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

// A tile size from the environment (PED_TILE_Q, PED_TILE_K, PED_BLOCK_SIZE, PED_REPS), for tuning
// runs; `fallback` when unset. Throws CLI::ValidationError naming the variable on a bad value.
std::int64_t env_integer(const char* name, std::int64_t fallback, std::int64_t lo, std::int64_t hi) {
  const char* value = std::getenv(name);
  if (value == nullptr) return fallback;
  std::string text(value);
  const std::string problem = ped::cli::integer_in<std::int64_t>(lo, hi)(text);
  if (!problem.empty()) throw CLI::ValidationError(name, problem);
  return std::stoll(text);
}

// The comma-separated items of text; an empty item (",,", a leading or trailing comma) makes the
// whole list empty, so that the option check refuses it.
std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    items.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (items.back().empty()) return {};
    if (comma == std::string::npos) return items;
    start = comma + 1;
  }
}

bool selected(const std::string& which, const std::string& name) {
  const std::vector<std::string> items = split_commas(which);
  return std::find(items.begin(), items.end(), name) != items.end();
}

// Every registered implementation's name, comma-separated: the default selection.
std::string joined_names() {
  std::string names;
  for (const std::string& name : ped::attention_impl_names()) names += (names.empty() ? "" : ",") + name;
  return names;
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = ped::cli;
  CLI::App app{"ped_variants_timing: one-shot timing of every attention variant, forward and backward"};
  std::int64_t n = 4096, d = 64, b = 1, h = 1;
  int threads = 2;
  std::string mask_name = "causal", which = joined_names();
  app.add_option("N", n, "tokens (Nq = Nk)")->check(cli::integer_in<std::int64_t>(1, 1 << 20))->capture_default_str();
  app.add_option("d", d, "head dim")->check(cli::integer_in<std::int64_t>(1, 4096))->capture_default_str();
  app.add_option("threads", threads, "threads")->check(cli::integer_in(1, 1024))->capture_default_str();
  app.add_option("B", b, "batch")->check(cli::integer_in<std::int64_t>(1, 4096))->capture_default_str();
  app.add_option("H", h, "heads")->check(cli::integer_in<std::int64_t>(1, 4096))->capture_default_str();
  app.add_option("mask", mask_name, std::string("attention mask: ") + ped::Mask::syntax())
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            try {
              ped::Mask::parse(text);
            } catch (const std::invalid_argument& error) {
              return error.what();
            }
            return "";
          },
          "MASK"))
      ->capture_default_str();
  app.add_option("variants", which, "comma-separated registered implementations to time")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            const std::vector<std::string> items = split_commas(text);
            for (const std::string& item : items) {
              if (!ped::find_attention_impl(item)) return "expected one of " + joined_names() + ", got '" + item + "'";
            }
            return !items.empty() ? "" : "expected a comma-separated list of implementations, got '" + text + "'";
          },
          "NAME[,NAME...]"))
      ->capture_default_str();
  std::int64_t tile_q = 0, tile_k = 0, block_size = 64;
  int reps = 3;
  try {
    app.parse(argc, argv);
    if (b * h * n * d > (std::int64_t{1} << 32)) {
      throw CLI::ValidationError("N", "B*H*N*d = " + std::to_string(b * h * n * d) + " elements, above 2^32");
    }
    tile_q = env_integer("PED_TILE_Q", 0, 0, 4096);
    tile_k = env_integer("PED_TILE_K", 0, 0, 4096);
    block_size = env_integer("PED_BLOCK_SIZE", 64, 1, 4096);
    reps = static_cast<int>(env_integer("PED_REPS", 3, 1, 1000));
    ped::Mask::parse(mask_name).validate("ped_variants_timing: mask", n, n);  // an explicit layout of another N
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;
  } catch (const std::invalid_argument& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return 2;
  }
  const ped::Mask mask = ped::Mask::parse(mask_name);
  // Visible (query, key) pairs, row by row (a block layout of N up to 2^20 would not fit in memory).
  double visible_pairs = 0.0;
  std::vector<ped::KeyInterval> keys;
  for (std::int64_t i = 0; i < n; ++i) {
    mask.row_intervals(i, n, n, keys);
    for (const ped::KeyInterval& iv : keys) visible_pairs += static_cast<double>(iv.hi - iv.lo);
  }

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
  const ped::AttentionOptions opt{.threads = threads, .tile_q = tile_q, .tile_k = tile_k, .block_size = block_size};

  const double gemm = sgemm_rate(threads);
  const double fwd_flop = 4.0 * double(b * h) * visible_pairs * double(d);
  std::printf("B=%lld H=%lld N=%lld d=%lld mask=%s float threads=%d  OpenBLAS SGEMM %.1f GFLOP/s\n",
              static_cast<long long>(b), static_cast<long long>(h), static_cast<long long>(n),
              static_cast<long long>(d), mask_name.c_str(), threads, gemm);
  for (const ped::AttentionImpl* impl : ped::attention_impls()) {
    if (!selected(which, impl->name) || !impl->supports<float>() || !impl->has_backward<float>()) continue;
    double tf = 1e30, tb = 1e30;  // best of `reps` runs: the machine may be shared
    for (int r = 0; r < reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      ped::run_forward<float>(*impl, shape, mask, scale, q.data(), k.data(), v.data(), out.data(), stats.data(),
                                    opt);
      tf = std::min(tf, seconds_since(t0));
      t0 = std::chrono::steady_clock::now();
      ped::run_backward<float>(*impl, shape, mask, scale, q.data(), k.data(), v.data(), out.data(), stats.data(),
                                     dout.data(), dq.data(), dk.data(), dv.data(), opt);
      tb = std::min(tb, seconds_since(t0));
    }
    std::printf("%-8s forward %9.2f ms %7.1f GFLOP/s (%5.1f%% of SGEMM)   backward %9.2f ms %7.1f GFLOP/s (%5.1f%%)\n",
                impl->name.c_str(), tf * 1e3, fwd_flop / tf / 1e9, 100.0 * fwd_flop / tf / 1e9 / gemm, tb * 1e3,
                2.5 * fwd_flop / tb / 1e9, 100.0 * 2.5 * fwd_flop / tb / 1e9 / gemm);
    if (!impl->times_phases) continue;
    // Where the time goes: one more forward and one more backward with the phases timed, each phase's
    // time summed over threads as a percentage of threads x that call's wall time.
    for (const bool backward : {false, true}) {
      ped::PhaseTimes times;
      ped::AttentionOptions timed = opt;
      timed.phases = &times;
      const auto t0 = std::chrono::steady_clock::now();
      if (backward) {
        ped::run_backward<float>(*impl, shape, mask, scale, q.data(), k.data(), v.data(), out.data(), stats.data(),
                                 dout.data(), dq.data(), dk.data(), dv.data(), timed);
      } else {
        ped::run_forward<float>(*impl, shape, mask, scale, q.data(), k.data(), v.data(), out.data(), stats.data(),
                                timed);
      }
      const double capacity = seconds_since(t0) * 1e9 * threads;
      std::printf("  %-8s", backward ? "backward" : "forward");
      double sum = 0.0;
      for (std::size_t p = 0; p < ped::kAttentionPhaseCount; ++p) {
        if (times.ns[p] == 0) continue;
        const double share = static_cast<double>(times.ns[p]) / capacity;
        sum += share;
        std::printf(" %s %.1f%%", ped::to_string(static_cast<ped::AttentionPhase>(p)), 100.0 * share);
      }
      std::printf(" other %.1f%%\n", 100.0 * (1.0 - sum));
    }
  }
  return 0;
}
