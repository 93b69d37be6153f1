#include "reference/linear.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

OpCase linear_case() {
  OpCase c{.name = "linear",
           .default_shapes = {{.N = 1, .I = 1, .O = 1}, {.N = 5, .I = 6, .O = 3}, {.N = 37, .I = 24, .O = 40}}};
  c.make = [](const CaseParams& cp, std::uint64_t seed) {
    const Dims& d = cp.dims;
    Problem p{.op = "linear", .shape = shape_string({{"N", d.N}, {"I", d.I}, {"O", d.O}}), .seed = seed};
    Rng rng(seed);
    p.inputs = {{"x", rng.normal(d.I, d.N)}, {"w", rng.normal(d.O, d.I, 1.0 / std::sqrt(d.I))}, {"b", rng.normal(d.O, 1)}};
    p.outputs = {"y"};
    p.forward = erase_forward([]<class T>(const Mats<T>& in) -> Mats<T> {
      return {ref::linear_forward(in[0], in[1], as_col(in[2]))};
    });
    p.backward = erase_backward([]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T> {
      ref::LinearGrads<T> g = ref::linear_backward(dout[0], in[0], in[1]);
      return {g.dx, g.dw, g.db};
    });
    p.twin = [](const TorchTensors& in) -> TorchTensors { return {twin::linear(in[0], in[1], in[2])}; };
    return p;
  };
  return c;
}

}  // namespace ped::verify
