// The registry of ops under test and the sweep over ops x shapes x seeds x dtypes x references.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "verify/checks.hpp"

namespace ped::verify {

// Sizes an op may use; each op reads the ones it needs and names them in its shape string.
// N tokens, D model width, H heads, F feed-forward width, V vocabulary, T positional table length,
// R LoRA rank, I and O input and output widths of a linear layer, K columns of a score matrix.
struct Dims {
  std::int64_t N = 4, D = 8, H = 2, F = 12, V = 7, T = 9, R = 2, I = 6, O = 5, K = 6;
};

// Parses "N=5,D=8" (unnamed sizes keep their defaults); throws std::invalid_argument on bad input.
Dims parse_dims(const std::string& text);

struct OpCase {
  std::string name;
  std::vector<Dims> default_shapes;
  std::function<Problem(const Dims&, std::uint64_t seed)> make;
};

// Every op of the reference library, in the order the README's table lists them.
const std::vector<OpCase>& op_cases();
const OpCase& find_op_case(const std::string& name);  // throws std::invalid_argument if unknown

struct SweepConfig {
  std::vector<std::string> ops;          // empty: every op
  std::vector<Dims> shapes;              // empty: each op's default shapes
  std::vector<std::uint64_t> seeds = {1, 2};
  std::vector<Dtype> dtypes = {Dtype::f32, Dtype::f64};
  std::vector<Reference> references = {Reference::libtorch, Reference::finite_difference};
  FiniteDifferenceOptions fd;
};

using ProgressFn = std::function<void(const Problem&, std::size_t done, std::size_t total)>;

std::vector<CheckRow> run_sweep(const SweepConfig& config, const ProgressFn& progress = {});

}  // namespace ped::verify
