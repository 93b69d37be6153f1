// Softmax cross-entropy for next-token prediction, mean over the tokens that are not ignored.
// V vocabulary, N tokens. logits (V, N): column n scores the token that follows position n.
#pragma once

#include "reference/common.hpp"

namespace ped::ref {

inline constexpr std::int64_t kDefaultIgnoreIndex = -100;  // PyTorch's default

template <class T>
struct CrossEntropyCache {
  Mat<T> probs;      // (V, N) softmax of each column, kept for backward
  TokenIds targets;  // (N)
  std::int64_t ignore_index = kDefaultIgnoreIndex;
  arma::uword count = 0;  // number of tokens whose target is not ignore_index
};

// targets[n] = ids[n + 1] for n < N - 1 and ignore_index for the last position: the next-token
// targets of a sequence whose logits are computed at every position.
TokenIds next_token_targets(const TokenIds& ids, std::int64_t ignore_index = kDefaultIgnoreIndex);

// forward: L = -(1 / C) sum over n with t_n != ignore of log softmax(z_n)[t_n], C the count.
// If every target is ignored, L = 0 and the gradient is zero (PyTorch returns NaN there).
template <class T>
T cross_entropy_forward(const Mat<T>& logits, const TokenIds& targets, std::int64_t ignore_index,
                        CrossEntropyCache<T>& cache);

// backward: dZ[:, n] = dL (softmax(z_n) - e_{t_n}) / C for kept tokens, 0 for ignored ones.
template <class T>
Mat<T> cross_entropy_backward(const CrossEntropyCache<T>& cache, T dloss = T(1));

}  // namespace ped::ref
