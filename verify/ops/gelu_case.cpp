#include "reference/gelu.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

namespace {
OpCase gelu_case(ref::GeluApprox approx) {
  const std::string name = std::string("gelu_") + ref::to_string(approx);
  OpCase c{.name = name, .default_shapes = {{.N = 1, .D = 1}, {.N = 5, .D = 3}, {.N = 31, .D = 40}}};
  c.make = [approx, name](const CaseParams& cp, std::uint64_t seed) {
    const Dims& d = cp.dims;
    Problem p{.op = name, .shape = shape_string({{"N", d.N}, {"D", d.D}}), .seed = seed};
    Rng rng(seed);
    p.inputs = {{"x", 2.0 * rng.normal(d.D, d.N)}};
    p.outputs = {"y"};
    p.forward = erase_forward([approx]<class T>(const Mats<T>& in) -> Mats<T> { return {ref::gelu_forward(in[0], approx)}; });
    p.backward = erase_backward([approx]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T> {
      return {ref::gelu_backward(dout[0], in[0], approx)};
    });
    p.twin = [approx](const TorchTensors& in) -> TorchTensors { return {twin::gelu(in[0], ref::to_string(approx))}; };
    return p;
  };
  return c;
}
}  // namespace

OpCase gelu_tanh_case() { return gelu_case(ref::GeluApprox::tanh); }
OpCase gelu_erf_case() { return gelu_case(ref::GeluApprox::erf); }

}  // namespace ped::verify
