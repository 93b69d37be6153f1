// The LibTorch contenders (one translation unit holds every LibTorch include: its headers cost
// ~10 s of compile each). Baselines, not subjects: at::_scaled_dot_product_attention (LibTorch
// 1.13's math path: softmax(Q K^T / sqrt(d) + mask) V) and the same composed from matmul, softmax
// and matmul, each with autograd for the backward pass; and the per-layer twins of reference/.
#pragma once

#include "bench/bench_config.hpp"

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

namespace ped::bench {

void set_libtorch_threads(int threads);
std::string libtorch_version();

// The benchmark body for c.contender in {libtorch_sdpa, libtorch_composed}.
void libtorch_attention_benchmark(benchmark::State& state, const AttentionCase& c);

// Registers layer/<op>/libtorch/... twins of the reference layer benchmarks.
void register_libtorch_layer_benchmarks(const BenchConfig& config);

// For tests: LibTorch's out (B, H, N, d) for row-major float inputs, through the contender's code
// path (forward only).
std::vector<float> libtorch_attention_out(Contender contender, const Mask& mask, const AttentionShape& shape,
                                          const std::vector<float>& q, const std::vector<float>& k,
                                          const std::vector<float>& v);

}  // namespace ped::bench
