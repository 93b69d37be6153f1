#include "reference/feed_forward.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

namespace {
// inputs: x, w1, b1, w2, b2
template <class T>
ref::FeedForwardParams<T> params(const Mats<T>& in) {
  return {.w1 = in[1], .b1 = as_col(in[2]), .w2 = in[3], .b2 = as_col(in[4])};
}
}  // namespace

OpCase feed_forward_case() {
  OpCase c{.name = "feed_forward",
           .default_shapes = {{.N = 1, .D = 1, .F = 1}, {.N = 5, .D = 6, .F = 10}, {.N = 16, .D = 32, .F = 128}}};
  c.make = [](const CaseParams& cp, std::uint64_t seed) {
    const Dims& d = cp.dims;
    Problem p{.op = "feed_forward", .shape = shape_string({{"N", d.N}, {"D", d.D}, {"F", d.F}}), .seed = seed};
    Rng rng(seed);
    p.inputs = {{"x", rng.normal(d.D, d.N)},
                {"w1", rng.normal(d.F, d.D, 1.0 / std::sqrt(d.D))},
                {"b1", rng.normal(d.F, 1, 0.1)},
                {"w2", rng.normal(d.D, d.F, 1.0 / std::sqrt(d.F))},
                {"b2", rng.normal(d.D, 1, 0.1)}};
    p.outputs = {"y"};
    const ref::GeluApprox approx = ref::GeluApprox::tanh;
    p.forward = erase_forward([approx]<class T>(const Mats<T>& in) -> Mats<T> {
      ref::FeedForwardCache<T> cache;
      return {ref::feed_forward_forward(in[0], params(in), approx, cache)};
    });
    p.backward = erase_backward([approx]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T> {
      ref::FeedForwardCache<T> cache;
      const ref::FeedForwardParams<T> prm = params(in);
      ref::feed_forward_forward(in[0], prm, approx, cache);
      ref::FeedForwardGrads<T> g = ref::feed_forward_backward(dout[0], prm, cache);
      return {g.dx, g.dp.w1, g.dp.b1, g.dp.w2, g.dp.b2};
    });
    p.twin = [](const TorchTensors& in) -> TorchTensors {
      return {twin::feed_forward(in[0], in[1], in[2], in[3], in[4], "tanh")};
    };
    return p;
  };
  return c;
}

}  // namespace ped::verify
