#include "reference/token_embedding.hpp"

namespace ped::ref {

namespace {
void check_ids(const char* fn, const TokenIds& ids, arma::uword vocab) {
  if (ids.empty()) throw_invalid(fn, "ids is empty, expected at least one token");
  if (vocab == 0) throw_invalid(fn, "vocabulary size is 0, expected at least 1");
  for (std::size_t n = 0; n < ids.size(); ++n) {
    if (ids[n] < 0 || static_cast<arma::uword>(ids[n]) >= vocab) {
      throw_invalid(fn, "ids[", n, "] = ", ids[n], " is outside the vocabulary [0, ", vocab, ")");
    }
  }
}
}  // namespace

template <class T>
Mat<T> token_embedding_forward(const Mat<T>& wte, const TokenIds& ids) {
  constexpr const char* fn = "token_embedding_forward";
  require_nonempty(fn, "wte", wte);
  check_ids(fn, ids, wte.n_cols);
  Mat<T> x(wte.n_rows, ids.size());
  for (std::size_t n = 0; n < ids.size(); ++n) x.col(n) = wte.col(static_cast<arma::uword>(ids[n]));
  return x;
}

template <class T>
Mat<T> token_embedding_backward(const Mat<T>& dx, const TokenIds& ids, arma::uword vocab) {
  constexpr const char* fn = "token_embedding_backward";
  require_nonempty(fn, "dx", dx);
  check_ids(fn, ids, vocab);
  if (dx.n_cols != ids.size()) throw_invalid(fn, "dx has ", dx.n_cols, " columns but there are ", ids.size(), " ids");
  Mat<T> dwte(dx.n_rows, vocab, arma::fill::zeros);
  // forward: x[:, n] = wte[:, ids[n]]  =>  a token seen twice receives both columns' gradients
  for (std::size_t n = 0; n < ids.size(); ++n) dwte.col(static_cast<arma::uword>(ids[n])) += dx.col(n);
  return dwte;
}

#define PED_INSTANTIATE(T)                                                    \
  template Mat<T> token_embedding_forward<T>(const Mat<T>&, const TokenIds&); \
  template Mat<T> token_embedding_backward<T>(const Mat<T>&, const TokenIds&, arma::uword);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::ref
