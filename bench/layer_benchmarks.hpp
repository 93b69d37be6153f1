// layer/<op>/reference/forward_backward/float/D:<D>/N:<N>/... benchmarks of the reference layers
// (forward then hand-derived backward, Armadillo + OpenBLAS) at GPT-small-like sizes; their
// LibTorch twins (layer/<op>/libtorch/...) sit in libtorch_benchmarks.cpp. reports/ skips them.
#pragma once

#include "bench/bench_config.hpp"

namespace ped::bench {

void register_reference_layer_benchmarks(const BenchConfig& config);

}  // namespace ped::bench
