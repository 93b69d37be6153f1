// Shared conventions of the reference layers.
//
// Column-major, as Armadillo stores matrices: one token's feature vector is one column.
// D model width, N tokens, V vocabulary, T positional table length, F feed-forward width,
// H heads, dh = D / H head width, r LoRA rank.
#pragma once

#include <armadillo>

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "variants/common.hpp"

namespace ped::ref {

template <class T>
using Mat = arma::Mat<T>;
template <class T>
using Col = arma::Col<T>;

// Token ids are signed so that an ignore index (e.g. -100, as in PyTorch) can sit among them.
using TokenIds = std::vector<std::int64_t>;

template <class T>
std::string shape_of(const arma::Mat<T>& m) {
  std::ostringstream os;
  os << "(" << m.n_rows << " x " << m.n_cols << ")";
  return os.str();
}

// throw_invalid(function, parts...) throws std::invalid_argument("function: part1part2..."): every
// bad input names the function and the offending values (shared with the attention kernels).
using detail::throw_invalid;

template <class T>
void require_nonempty(const char* function, const char* name, const arma::Mat<T>& m) {
  if (m.n_elem == 0) throw_invalid(function, name, " is empty ", shape_of(m), ", expected at least one element");
}

template <class T>
void require_shape(const char* function, const char* name, const arma::Mat<T>& m, arma::uword rows,
                   arma::uword cols) {
  if (m.n_rows != rows || m.n_cols != cols) {
    throw_invalid(function, name, " has shape ", shape_of(m), ", expected (", rows, " x ", cols, ")");
  }
}

}  // namespace ped::ref
