// Token embedding.
// D model width, V vocabulary, N tokens.
#pragma once

#include "reference/common.hpp"

namespace ped::ref {

// forward: X = W_E[:, ids], X (D, N), W_E (D, V).
template <class T>
Mat<T> token_embedding_forward(const Mat<T>& wte, const TokenIds& ids);

// backward: dW_E[:, v] = sum over n with ids[n] == v of dX[:, n]; repeated ids accumulate.
// Returns a fresh (D, V) gradient (overwrite semantics).
template <class T>
Mat<T> token_embedding_backward(const Mat<T>& dx, const TokenIds& ids, arma::uword vocab);

}  // namespace ped::ref
