#include "reference/layer_norm.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

OpCase layer_norm_case() {
  OpCase c{.name = "layer_norm", .default_shapes = {{.N = 1, .D = 1}, {.N = 3, .D = 5}, {.N = 17, .D = 64}}};
  c.make = [](const CaseParams& cp, std::uint64_t seed) {
    const Dims& d = cp.dims;
    Problem p{.op = "layer_norm", .shape = shape_string({{"N", d.N}, {"D", d.D}}), .seed = seed};
    Rng rng(seed);
    const double eps = 1e-5;
    if (d.D == 1) {
      p.tolerance_f32 = 1e-2;
      p.tolerance_reason =
          "D = 1: each token is its own mean, so xhat = 0 and dx = 0 exactly; LibTorch's float kernel returns "
          "rounding noise of order eps(float) * rstd = 1.2e-7 * 316 there (rstd = 1/sqrt(eps))";
    }
    p.inputs = {{"x", 0.5 + 2.0 * rng.normal(d.D, d.N)},
                {"gamma", 1.0 + 0.1 * rng.normal(d.D, 1)},
                {"beta", rng.normal(d.D, 1)}};
    p.outputs = {"y"};
    p.forward = erase_forward([eps]<class T>(const Mats<T>& in) -> Mats<T> {
      ref::LayerNormCache<T> cache;
      return {ref::layer_norm_forward(in[0], as_col(in[1]), as_col(in[2]), static_cast<T>(eps), cache)};
    });
    p.backward = erase_backward([eps]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T> {
      ref::LayerNormCache<T> cache;
      ref::layer_norm_forward(in[0], as_col(in[1]), as_col(in[2]), static_cast<T>(eps), cache);
      ref::LayerNormGrads<T> g = ref::layer_norm_backward(dout[0], as_col(in[1]), cache);
      return {g.dx, g.dgamma, g.dbeta};
    });
    p.twin = [eps](const TorchTensors& in) -> TorchTensors { return {twin::layer_norm(in[0], in[1], in[2], eps)}; };
    return p;
  };
  return c;
}

}  // namespace ped::verify
