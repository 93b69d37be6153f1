// Learned positional embedding.
// D model width, T positional table length, N tokens.
#pragma once

#include "reference/common.hpp"

namespace ped::ref {

// forward: P = W_P[:, offset : offset + N], W_P (D, T). Positions offset .. offset+N-1.
template <class T>
Mat<T> positional_embedding_forward(const Mat<T>& wpe, arma::uword n_tokens, arma::uword offset = 0);

// backward: dW_P[:, offset : offset + N] = dP, zero elsewhere. Returns a fresh (D, T) gradient.
template <class T>
Mat<T> positional_embedding_backward(const Mat<T>& dp, arma::uword table_length, arma::uword offset = 0);

}  // namespace ped::ref
