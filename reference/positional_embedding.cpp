#include "reference/positional_embedding.hpp"

namespace ped::ref {

template <class T>
Mat<T> positional_embedding_forward(const Mat<T>& wpe, arma::uword n_tokens, arma::uword offset) {
  constexpr const char* fn = "positional_embedding_forward";
  require_nonempty(fn, "wpe", wpe);
  if (n_tokens == 0) throw_invalid(fn, "n_tokens is 0, expected at least 1");
  if (offset + n_tokens > wpe.n_cols) {
    throw_invalid(fn, "positions ", offset, " .. ", offset + n_tokens - 1, " exceed the positional table of length ",
                  wpe.n_cols);
  }
  return wpe.cols(offset, offset + n_tokens - 1);
}

template <class T>
Mat<T> positional_embedding_backward(const Mat<T>& dp, arma::uword table_length, arma::uword offset) {
  constexpr const char* fn = "positional_embedding_backward";
  require_nonempty(fn, "dp", dp);
  if (offset + dp.n_cols > table_length) {
    throw_invalid(fn, "positions ", offset, " .. ", offset + dp.n_cols - 1, " exceed the positional table of length ",
                  table_length);
  }
  // forward: p = wpe[:, offset : offset + N]
  Mat<T> dwpe(dp.n_rows, table_length, arma::fill::zeros);
  dwpe.cols(offset, offset + dp.n_cols - 1) = dp;
  return dwpe;
}

#define PED_INSTANTIATE(T)                                                                  \
  template Mat<T> positional_embedding_forward<T>(const Mat<T>&, arma::uword, arma::uword); \
  template Mat<T> positional_embedding_backward<T>(const Mat<T>&, arma::uword, arma::uword);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::ref
