// How much memory a problem of an op needs, estimated from its sizes before anything is allocated,
// so that the sweep refuses a selection above its memory budget instead of failing to allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "verify/sweep.hpp"

namespace ped::verify {

// Element counts (of 8-byte doubles), as doubles: sizes of up to 1e6 each multiply past 2^63.
struct Footprint {
  std::string shape;                // the sizes the op uses, as its problems name them ("N=5 D=8")
  double inputs = 0;                // every input (the carrier of the problem, held for the whole sweep)
  double differentiable_inputs = 0; // the inputs that get a gradient (the columns of the Jacobian)
  double outputs = 0;               // every forward output
  // The largest tensors a forward and backward hold beyond inputs, outputs and gradients, counted
  // with their multiplicity in one pass (attention: scores, probabilities and dS of every head).
  double intermediates = 0;
};

// The footprint of op `op` at `dims`. Throws std::logic_error for an op without a formula (every
// op of op_cases() has one; verify/tests/footprint_test.cpp checks the inputs and outputs exactly).
// `feature_set`: the OpCase::feature_sets item of an op that has them (sdpa_features; empty: the
// largest of its sets), ignored by the others.
Footprint footprint(const std::string& op, const Dims& dims, const std::string& feature_set = "");

// Bytes of a problem's inputs: what a built problem holds until the sweep ends.
double resident_bytes(const Footprint& f);

// Peak bytes of checking one problem against one reference, beyond its resident inputs:
//   8 (kWorkingCopies (inputs + outputs) + kIntermediateCopies intermediates)
//   + 16 min(outputs x differentiable inputs, full_jacobian_max)   with finite differences,
// the last term the numerical and analytical Jacobians of the full-Jacobian mode (at most
// full_jacobian_max entries each, else the mode is random directions, which holds no Jacobian).
double check_bytes(const Footprint& f, bool finite_differences, std::size_t full_jacobian_max);

// Inputs and outputs held at once while checking: the rounded inputs, LibTorch's leaves and their
// gradients, our gradients, the float conversions, the cotangents, both forward outputs, the
// finite-difference stencil's shifted inputs and flattened outputs. Deliberately on the high side.
inline constexpr double kWorkingCopies = 8;
// Ours, the LibTorch twin's forward values that autograd saves, and the gradients its backward
// builds from them. Measured peak resident memory above the process's own (~170 MB, LibTorch
// loaded) against the estimate (verify --seeds 1 --references libtorch; finite differences hold
// less): attention N=1000 D=64 H=4 330 / 406 MB, layer_norm N=D=2000 650 / 832 MB, transformer_block
// N=800 D=64 H=4 F=256 165 / 295 MB, sdpa naive causal N=1500 H=2 d=64 280 / 770 MB.
inline constexpr double kIntermediateCopies = 3;

// The cost model of sharded runs (verify --shard, --list-cases; core/shard.hpp balances shards by
// it): the estimated time of one check (one dtype against one reference) of a problem, in element
// visits. An integer, so that every machine computes the same partition.
//
//   one evaluation = kEvaluationOverhead + inputs + outputs + intermediates (rounded up)
//                    (a forward; a backward counts as kBackwardEvaluations)
//   libtorch            forward + backward of ours and of the LibTorch twin
//                       (2 + 2 kBackwardEvaluations); a 16-bit dtype adds the naive kernel's in
//                       double, the truth it is measured against (3 + 3 kBackwardEvaluations)
//   finite_difference   the base forward, then
//                       full Jacobian (outputs x differentiable inputs <= full_jacobian_max):
//                         4 forwards per Jacobian column (each differentiable input element) and
//                         one backward per Jacobian row (each output element);
//                       else random directions: 4 forwards per direction and differentiable input
//                         tensor (`differentiable_tensors` x directions x 4) and one backward
//   naive               forward + backward of ours and of the naive kernel (2 + 2 kBackwardEvaluations)
//   a problem checked in a child process (a plugin) adds kChildProcessCost per check.
//
// The overhead stands for what does not grow with the sizes (LibTorch's dispatch and autograd
// graph, allocations), which dominates the default sweep's small shapes. Calibrated against the
// default sweep's per-problem seconds (verify's progress lines): see kEvaluationOverhead.
std::uint64_t check_cost(const Footprint& f, std::size_t differentiable_tensors, Dtype dtype, Reference reference,
                         const FiniteDifferenceOptions& fd, bool isolated);

// Element visits one evaluation costs beyond its sizes.
inline constexpr double kEvaluationOverhead = 2000;
inline constexpr double kBackwardEvaluations = 2;
// Starting a child process, sending the problem and reading its rows back (fork, pipe).
inline constexpr double kChildProcessCost = 1e6;

}  // namespace ped::verify
