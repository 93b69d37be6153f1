// Helpers for the variants tests: seeded problems, running a variant, error metrics and the mask
// catalogue every test sweeps. B batch, H heads, Nq/Nk query/key tokens, d head dim.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "variants/attention.hpp"
#include "variants/registry.hpp"

namespace ped::test {

constexpr std::uint64_t kSeed = 20251128;  // every random input derives from this seed

// Inputs of one attention call, filled uniformly in [-1, 1) from `seed`.
template <class T>
struct Problem {
  AttentionShape shape;
  T scale;
  std::vector<T> q, k, v, dout;  // q, dout (B, H, Nq, d); k, v (B, H_kv, Nk, d)
};

template <class T>
Problem<T> make_problem(const AttentionShape& shape, std::uint64_t seed);

// Outputs of forward + backward; lse from the forward's row stats.
template <class T>
struct Result {
  std::vector<T> out, lse, dq, dk, dv;
  std::vector<RowStats<T>> stats;
};

// The built-in implementations of the registry (variants/builtin_impls.cpp), in registration order:
// the kernels every test here sweeps. A built-in kernel added with its registration line is swept
// by these tests without editing them.
std::vector<const AttentionImpl*> builtin_impls();

// Option sets every test of an implementation runs: 2 threads with its default tiles, plus, for
// the built-ins that have tiles, small and odd tiles on 1 thread so that every test shape spans
// many tiles. An implementation not named here gets the default set only.
std::vector<AttentionOptions> tilings(const AttentionImpl& impl);

// Runs impl's forward, then its backward from its own out and stats (both through the registry's
// run_forward / run_backward, with their input checks). An implementation without a backward for T
// (forward only, AttentionImpl::has_backward) runs its forward and leaves dq, dk, dv empty.
template <class T>
Result<T> run(const AttentionImpl& impl, const Problem<T>& p, const Mask& mask, const AttentionOptions& options = {});

// ||a - b|| / max(||b||, tiny), in double. Entries equal to -inf in both (lse of fully masked rows)
// are skipped; -inf in only one of them gives +inf.
template <class T>
double norm_rel_err(const std::vector<T>& a, const std::vector<T>& b);

template <class T>
bool has_nan_or_inf(const std::vector<T>& a);  // +inf or NaN; -inf (masked lse) allowed

struct NamedMask {
  std::string name;
  Mask mask;
};

// Every mask kind, parameters small enough to matter at the test sizes. Depends on the shape
// only through the explicit block layout (and the fully hidden one), which must match Nq, Nk.
std::vector<NamedMask> mask_catalogue(std::int64_t seq_q, std::int64_t seq_k);

std::string shape_string(const AttentionShape& s);

}  // namespace ped::test
