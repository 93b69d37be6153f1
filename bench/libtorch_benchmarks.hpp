// The LibTorch contenders (one translation unit holds every LibTorch include: its headers cost
// ~10 s of compile each). Baselines, not subjects: the formulations of libtorch_contenders()
// (bench_config.hpp: at::_scaled_dot_product_attention, LibTorch 1.13's math path, and the same
// softmax(Q K^T / sqrt(d) + mask) V composed from LibTorch's GEMM calls), each with autograd for the
// backward pass; and the per-layer twins of reference/.
#pragma once

#include "bench/bench_config.hpp"

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

namespace ped::bench {

void set_libtorch_threads(int threads);
std::string libtorch_version();

// The benchmark body for a contender of libtorch_contenders() (the probe under GlibcDefaultScope).
void libtorch_attention_benchmark(benchmark::State& state, const AttentionCase& c);

// Registers layer/<op>/libtorch/... twins of the reference layer benchmarks.
void register_libtorch_layer_benchmarks(const BenchConfig& config);

// For tests: LibTorch's out (B, H, N, d) for row-major float inputs, through the contender's code
// path (forward only).
std::vector<float> libtorch_attention_out(const Contender& contender, const Mask& mask, const AttentionShape& shape,
                                          const std::vector<float>& q, const std::vector<float>& k,
                                          const std::vector<float>& v);
// For tests: LibTorch's out (B, H, Nq, d) of a case (grouped-query heads, a variable-length batch,
// decoding) for row-major float q (B, H, Nq, d), k, v (B, H_kv, Nk, d), through the case's
// contender's code path (forward only). A variable-length batch's padding rows hold what the padded
// formulation computes for them (finite, meaningless).
std::vector<float> libtorch_case_out(const AttentionCase& c, const std::vector<float>& q, const std::vector<float>& k,
                                     const std::vector<float>& v);

}  // namespace ped::bench
