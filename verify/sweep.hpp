// The registry of ops under test and the sweep over ops x shapes x seeds x dtypes x references.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "verify/checks.hpp"

namespace ped::verify {

// Sizes an op may use; each op reads the ones it needs and names them in its shape string.
// N tokens (queries), D model width, H heads, F feed-forward width, V vocabulary, T positional table
// length, R LoRA rank, I and O input and output widths of a linear layer, K columns of a score
// matrix, B batch, Nk keys of an attention kernel (0: as many as queries), Dh its head dim.
struct Dims {
  std::int64_t N = 4, D = 8, H = 2, F = 12, V = 7, T = 9, R = 2, I = 6, O = 5, K = 6, B = 1, Nk = 0, Dh = 8;
};

// What one problem is made of: sizes, and for attention kernels the variant and the mask.
struct CaseParams {
  Dims dims;
  std::string variant;  // empty for reference layers
  std::string mask;     // empty where the op has no mask choice
};

// Parses "N=5,D=8" (unnamed sizes keep their defaults); throws std::invalid_argument on bad input.
Dims parse_dims(const std::string& text);

struct OpCase {
  std::string name;
  std::vector<Dims> default_shapes;
  std::function<Problem(const CaseParams&, std::uint64_t seed)> make;
  std::vector<std::string> variants = {""};  // attention kernels: the variants it runs
  std::vector<std::string> masks = {""};     // attention kernels: the mask names it runs
  // The references this op is checked against by default (attention kernels add naive).
  std::vector<Reference> references = {Reference::libtorch, Reference::finite_difference};
  // Whether a variant x mask combination runs (an implementation that does not take a mask kind
  // skips it); empty: every combination.
  std::function<bool(const CaseParams&)> runs;
};

// Every op of the reference library, in the order the README's table lists them.
const std::vector<OpCase>& op_cases();
const OpCase& find_op_case(const std::string& name);  // throws std::invalid_argument if unknown

struct SweepConfig {
  std::vector<std::string> ops;          // empty: every op
  std::vector<Dims> shapes;              // empty: each op's default shapes
  std::vector<std::string> variants;     // empty: each op's variants
  std::vector<std::string> masks;        // empty: each op's masks
  std::vector<std::uint64_t> seeds = {1, 2};
  std::vector<Dtype> dtypes = {Dtype::f32, Dtype::f64};
  std::vector<Reference> references;     // empty: each op's references
  FiniteDifferenceOptions fd;
};

using ProgressFn = std::function<void(const Problem&, std::size_t done, std::size_t total)>;

std::vector<CheckRow> run_sweep(const SweepConfig& config, const ProgressFn& progress = {});

}  // namespace ped::verify
