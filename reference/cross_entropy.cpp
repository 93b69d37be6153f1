#include "reference/cross_entropy.hpp"

#include <cmath>

namespace ped::ref {

TokenIds next_token_targets(const TokenIds& ids, std::int64_t ignore_index) {
  if (ids.empty()) throw_invalid("next_token_targets", "ids is empty, expected at least one token");
  TokenIds targets(ids.begin() + 1, ids.end());
  targets.push_back(ignore_index);
  return targets;
}

template <class T>
T cross_entropy_forward(const Mat<T>& logits, const TokenIds& targets, std::int64_t ignore_index,
                        CrossEntropyCache<T>& cache) {
  constexpr const char* fn = "cross_entropy_forward";
  require_nonempty(fn, "logits", logits);
  if (targets.size() != logits.n_cols) {
    throw_invalid(fn, "there are ", targets.size(), " targets for logits ", shape_of(logits), ", expected ",
                  logits.n_cols);
  }
  const arma::uword vocab = logits.n_rows;
  for (std::size_t n = 0; n < targets.size(); ++n) {
    if (targets[n] == ignore_index) continue;
    if (targets[n] < 0 || static_cast<arma::uword>(targets[n]) >= vocab) {
      throw_invalid(fn, "targets[", n, "] = ", targets[n], " is outside the vocabulary [0, ", vocab,
                    ") and is not the ignore index ", ignore_index);
    }
  }
  // log softmax, shifted by the column max so that exp never overflows
  const arma::Row<T> colmax = arma::max(logits, 0);
  const Mat<T> shifted = logits.each_row() - colmax;
  const Mat<T> e = arma::exp(shifted);
  const arma::Row<T> colsum = arma::sum(e, 0);
  cache.probs = e.each_row() / colsum;
  cache.targets = targets;
  cache.ignore_index = ignore_index;
  cache.count = 0;
  T total = T(0);
  for (std::size_t n = 0; n < targets.size(); ++n) {
    if (targets[n] == ignore_index) continue;
    ++cache.count;
    total -= shifted(static_cast<arma::uword>(targets[n]), n) - std::log(colsum(n));
  }
  return cache.count == 0 ? T(0) : total / static_cast<T>(cache.count);
}

template <class T>
Mat<T> cross_entropy_backward(const CrossEntropyCache<T>& cache, T dloss) {
  Mat<T> dz(cache.probs.n_rows, cache.probs.n_cols, arma::fill::zeros);
  if (cache.count == 0) return dz;
  const T w = dloss / static_cast<T>(cache.count);
  for (std::size_t n = 0; n < cache.targets.size(); ++n) {
    if (cache.targets[n] == cache.ignore_index) continue;
    // forward: l_n = -log p[t_n, n], p = softmax(z_n)  =>  dz_n = p_n - e_{t_n}
    dz.col(n) = w * cache.probs.col(n);
    dz(static_cast<arma::uword>(cache.targets[n]), n) -= w;
  }
  return dz;
}

#define PED_INSTANTIATE(T)                                                                                      \
  template T cross_entropy_forward<T>(const Mat<T>&, const TokenIds&, std::int64_t, CrossEntropyCache<T>&); \
  template Mat<T> cross_entropy_backward<T>(const CrossEntropyCache<T>&, T);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::ref
