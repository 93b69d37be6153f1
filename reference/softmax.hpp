// Row softmax: each row of S (for attention, row i holds query i's scores) becomes a distribution.
// M rows, K columns. s (M, K), p (M, K).
#pragma once

#include "reference/common.hpp"

namespace ped::ref {

// forward: P = exp(S - rowmax(S)) / rowsum(exp(S - rowmax(S))).
// Entries of -inf are masked out (probability 0); a row that is entirely -inf gives a zero row.
template <class T>
Mat<T> softmax_rows_forward(const Mat<T>& s);

// backward: dS = P o (dP - rowsum(dP o P) 1^T); P is the forward output (the saved state).
template <class T>
Mat<T> softmax_rows_backward(const Mat<T>& dp, const Mat<T>& p);

}  // namespace ped::ref
