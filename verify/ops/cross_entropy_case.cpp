#include "reference/cross_entropy.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

OpCase cross_entropy_case() {
  OpCase c{.name = "cross_entropy", .default_shapes = {{.N = 1, .V = 1}, {.N = 5, .V = 7}, {.N = 40, .V = 65}}};
  c.make = [](const CaseParams& cp, std::uint64_t seed) {
    const Dims& d = cp.dims;
    Problem p{.op = "cross_entropy", .shape = shape_string({{"N", d.N}, {"V", d.V}}), .seed = seed};
    Rng rng(seed);
    const std::int64_t ignore = ref::kDefaultIgnoreIndex;
    // next-token targets: the last position has no next token and is ignored (kept when N = 1 so
    // that the mean is over at least one token)
    ref::TokenIds targets = rng.integers(d.N, 0, d.V);
    if (targets.size() >= 2) targets.back() = ignore;
    p.inputs = {{"logits", 2.0 * rng.normal(d.V, d.N)}};
    p.outputs = {"loss"};
    p.forward = erase_forward([targets, ignore]<class T>(const Mats<T>& in) -> Mats<T> {
      ref::CrossEntropyCache<T> cache;
      return {arma::Mat<T>(1, 1, arma::fill::value(ref::cross_entropy_forward(in[0], targets, ignore, cache)))};
    });
    p.backward = erase_backward([targets, ignore]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T> {
      ref::CrossEntropyCache<T> cache;
      ref::cross_entropy_forward(in[0], targets, ignore, cache);
      return {ref::cross_entropy_backward(cache, dout[0](0, 0))};
    });
    p.twin = [targets, ignore](const TorchTensors& in) -> TorchTensors {
      return {at::cross_entropy_loss(in[0].t(), twin::ids_tensor(targets), {}, at::Reduction::Mean, ignore, 0.0)};
    };
    return p;
  };
  return c;
}

}  // namespace ped::verify
