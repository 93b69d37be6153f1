#include "reference/lora_linear.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

namespace {
template <class T>
ref::LoraLinearParams<T> params(const Mats<T>& in, double alpha) {
  return {.w0 = in[1], .b0 = as_col(in[2]), .a = in[3], .b = in[4], .alpha = static_cast<T>(alpha)};
}
}  // namespace

OpCase lora_linear_case() {
  OpCase c{.name = "lora_linear",
           .default_shapes = {{.N = 1, .R = 1, .I = 1, .O = 1}, {.N = 5, .R = 2, .I = 6, .O = 4},
                              {.N = 33, .R = 4, .I = 32, .O = 24}}};
  c.make = [](const CaseParams& cp, std::uint64_t seed) {
    const Dims& d = cp.dims;
    Problem p{.op = "lora_linear", .shape = shape_string({{"N", d.N}, {"I", d.I}, {"O", d.O}, {"R", d.R}}), .seed = seed};
    require_sizes(d.R <= std::min(d.I, d.O), p.op, p.shape, "R <= min(I, O)");
    Rng rng(seed);
    // alpha / r != 1, so a gradient missing the scale is visible
    const double alpha = 3.0 * static_cast<double>(d.R) / 2.0 + 0.5;
    p.inputs = {{"x", rng.normal(d.I, d.N)},
                {"w0", rng.normal(d.O, d.I, 1.0 / std::sqrt(d.I)), false},
                {"b0", rng.normal(d.O, 1), false},
                {"a", rng.normal(d.R, d.I, 1.0 / std::sqrt(d.I))},
                // B is zero at the start of a fine-tune; random here so that dA is not zero
                {"b", rng.normal(d.O, d.R)}};
    p.outputs = {"y"};
    p.forward = erase_forward([alpha]<class T>(const Mats<T>& in) -> Mats<T> {
      ref::LoraLinearCache<T> cache;
      return {ref::lora_linear_forward(in[0], params(in, alpha), cache)};
    });
    p.backward = erase_backward([alpha]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T> {
      ref::LoraLinearCache<T> cache;
      const ref::LoraLinearParams<T> prm = params(in, alpha);
      ref::lora_linear_forward(in[0], prm, cache);
      ref::LoraLinearGrads<T> g = ref::lora_linear_backward(dout[0], prm, cache);
      return {g.dx, g.da, g.db};
    });
    const double scale = alpha / static_cast<double>(d.R);
    p.twin = [scale](const TorchTensors& in) -> TorchTensors {
      return {twin::linear(in[0], in[1], in[2]) + scale * in[4].mm(in[3].mm(in[0]))};
    };
    return p;
  };
  return c;
}

}  // namespace ped::verify
