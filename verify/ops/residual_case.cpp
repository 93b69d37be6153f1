#include "reference/residual.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

OpCase residual_case() {
  OpCase c{.name = "residual", .default_shapes = {{.N = 1, .D = 1}, {.N = 4, .D = 3}, {.N = 30, .D = 20}}};
  c.make = [](const CaseParams& cp, std::uint64_t seed) {
    const Dims& d = cp.dims;
    Problem p{.op = "residual", .shape = shape_string({{"N", d.N}, {"D", d.D}}), .seed = seed};
    Rng rng(seed);
    p.inputs = {{"x", rng.normal(d.D, d.N)}, {"fx", rng.normal(d.D, d.N)}};
    p.outputs = {"y"};
    p.forward = erase_forward([]<class T>(const Mats<T>& in) -> Mats<T> { return {ref::residual_forward(in[0], in[1])}; });
    p.backward = erase_backward([]<class T>(const Mats<T>&, const Mats<T>& dout) -> Mats<T> {
      ref::ResidualGrads<T> g = ref::residual_backward(dout[0]);
      return {g.dx, g.dfx};
    });
    p.twin = [](const TorchTensors& in) -> TorchTensors { return {in[0] + in[1]}; };
    return p;
  };
  return c;
}

}  // namespace ped::verify
