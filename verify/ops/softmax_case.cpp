#include "reference/softmax.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

OpCase softmax_case() {
  OpCase c{.name = "softmax", .default_shapes = {{.N = 1, .K = 1}, {.N = 3, .K = 5}, {.N = 20, .K = 33}}};
  c.make = [](const CaseParams& cp, std::uint64_t seed) {
    const Dims& d = cp.dims;
    Problem p{.op = "softmax", .shape = shape_string({{"N", d.N}, {"K", d.K}}), .seed = seed};
    Rng rng(seed);
    p.inputs = {{"s", 3.0 * rng.normal(d.N, d.K)}};
    p.outputs = {"p"};
    p.forward = erase_forward([]<class T>(const Mats<T>& in) -> Mats<T> { return {ref::softmax_rows_forward(in[0])}; });
    p.backward = erase_backward([]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T> {
      return {ref::softmax_rows_backward(dout[0], ref::softmax_rows_forward(in[0]))};
    });
    p.twin = [](const TorchTensors& in) -> TorchTensors { return {at::softmax(in[0], 1)}; };
    return p;
  };
  return c;
}

}  // namespace ped::verify
