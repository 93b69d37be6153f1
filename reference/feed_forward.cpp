#include "reference/feed_forward.hpp"

#include "reference/linear.hpp"

namespace ped::ref {

template <class T>
Mat<T> feed_forward_forward(const Mat<T>& x, const FeedForwardParams<T>& p, GeluApprox approx,
                            FeedForwardCache<T>& cache) {
  constexpr const char* fn = "feed_forward_forward";
  require_nonempty(fn, "x", x);
  require_nonempty(fn, "w1", p.w1);
  require_shape(fn, "w1", p.w1, p.w1.n_rows, x.n_rows);
  require_shape(fn, "w2", p.w2, x.n_rows, p.w1.n_rows);
  cache.x = x;
  cache.approx = approx;
  cache.h = linear_forward(x, p.w1, p.b1);
  cache.a = gelu_forward(cache.h, approx);
  return linear_forward(cache.a, p.w2, p.b2);
}

template <class T>
FeedForwardGrads<T> feed_forward_backward(const Mat<T>& dy, const FeedForwardParams<T>& p,
                                          const FeedForwardCache<T>& cache) {
  // forward: y = W2 a + b2
  LinearGrads<T> g2 = linear_backward(dy, cache.a, p.w2);
  // forward: a = gelu(h)
  const Mat<T> dh = gelu_backward(g2.dx, cache.h, cache.approx);
  // forward: h = W1 x + b1
  LinearGrads<T> g1 = linear_backward(dh, cache.x, p.w1);
  return {.dx = std::move(g1.dx),
          .dp = {.w1 = std::move(g1.dw), .b1 = std::move(g1.db), .w2 = std::move(g2.dw), .b2 = std::move(g2.db)}};
}

#define PED_INSTANTIATE(T)                                                                                   \
  template Mat<T> feed_forward_forward<T>(const Mat<T>&, const FeedForwardParams<T>&, GeluApprox,           \
                                          FeedForwardCache<T>&);                                            \
  template FeedForwardGrads<T> feed_forward_backward<T>(const Mat<T>&, const FeedForwardParams<T>&, \
                                                        const FeedForwardCache<T>&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::ref
