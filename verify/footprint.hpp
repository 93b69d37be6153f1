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
//   an evaluation of ours (or of the naive kernel) = kEvaluationOverhead + inputs + outputs + intermediates,
//   one of the LibTorch twin                       = kLibTorchEvaluationOverhead + the same sizes;
//   a backward counts as kBackwardEvaluations evaluations, a forward as one.
//   libtorch            forward + backward of ours and of the twin; a 16-bit dtype adds the naive
//                       kernel's in double (the truth it is measured against)
//   finite_difference   all ours: the base forward, then
//                       full Jacobian (outputs x differentiable inputs <= full_jacobian_max):
//                         4 forwards per Jacobian column (each differentiable input element) and
//                         one backward per Jacobian row (each output element);
//                       else random directions: 4 forwards per direction and differentiable input
//                         tensor (`differentiable_tensors` x directions x 4) and one backward
//   naive               forward + backward of ours and of the naive kernel
//   a problem checked in a child process (a plugin) adds kChildProcessCost per check.
//
// The overheads stand for what does not grow with the sizes and dominates the default sweep's small
// shapes: an Armadillo kernel's call is cheap, LibTorch's dispatch and autograd graph are not.
std::uint64_t check_cost(const Footprint& f, std::size_t differentiable_tensors, Dtype dtype, Reference reference,
                         const FiniteDifferenceOptions& fd, bool isolated);

// Chosen against the default sweep's per-problem seconds (verify's progress lines give each
// problem's; the mean of three runs): a least-squares fit of the time of each problem, weighted by
// 1 / its time, to the counts of the model gives 2200 and 42600 element visits; a single overhead
// for both (8000 fitted best) leaves a time-weighted mean |log(estimated / measured share)| over the
// problems of 0.42, the two 0.37. What remains is mostly arithmetic the footprint does not count
// (sdpa_large_scores' head dim 64: 0.4 of its measured share) and noise (a problem takes
// milliseconds); adding the attention products B H Nq Nk d to the sizes fitted no better.
inline constexpr double kEvaluationOverhead = 2000;
inline constexpr double kLibTorchEvaluationOverhead = 40000;
inline constexpr double kBackwardEvaluations = 2;
// Starting a child process, sending the problem and reading its rows back (fork, pipe).
inline constexpr double kChildProcessCost = 1e6;

}  // namespace ped::verify
