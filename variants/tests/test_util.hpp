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

// Tolerances on ||x - x_ref|| / ||x_ref||, the reference being naive in double (agreement_test.cpp,
// score_features_test.cpp):
// - double: unit roundoff 1.1e-16 grown by sums of up to Nk + d ~ 300 terms, softmax conditioning
//   and the (dP - D) cancellation in dS; observed errors stay below 1e-14, 1e-11 leaves margin.
constexpr double kTolDouble = 1e-11;
// - float: unit roundoff 6e-8 with the same growth; gradients go through two more GEMMs and the
//   dS cancellation; observed errors stay below 2e-6, 5e-5 leaves margin without hiding a bug
//   (a wrong mask or a missed tile gives errors of order 1e-2 or more).
constexpr double kTolFloat = 5e-5;
// Backward against central finite differences in double (finite_difference_test.cpp,
// score_features_test.cpp): truncation O(h^2 |L'''|) ~ 1e-12 and rounding O(eps |L| / h) ~ 1e-10
// with h = 1e-6 scaled to the input, so 1e-7 normwise is a safe bound that a wrong formula still
// exceeds by orders of magnitude.
constexpr double kTolFd = 1e-7;

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
// sum(dout o out) of impl's forward in double with options.
double fd_loss(const AttentionImpl& impl, const Problem<double>& p, const Mask& mask,
               const AttentionOptions& options = {});

// d fd_loss / dx by central differences (L(x + h) - L(x - h)) / 2h, h = 1e-6 max(1, |x|), for every
// element of x: one of p's inputs, or an array options points into (e.g. the sinks). x is restored.
std::vector<double> fd_gradient(const AttentionImpl& impl, const Problem<double>& p, std::vector<double>& x,
                                const Mask& mask, const AttentionOptions& options = {});

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

// Keeps the largest err seen per key of the table titled `title`; every table is printed (keys
// sorted) when the test program ends, so a run shows the worst errors it observed.
void note_worst(const std::string& title, const std::string& key, double err);

}  // namespace ped::test
