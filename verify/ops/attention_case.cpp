#include "reference/attention.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

namespace {
// inputs: x, wq, bq, wk, bk, wv, bv, wo, bo
template <class T>
ref::AttentionParams<T> params(const Mats<T>& in) {
  return {.wq = in[1], .wk = in[3], .wv = in[5], .wo = in[7],
          .bq = as_col(in[2]), .bk = as_col(in[4]), .bv = as_col(in[6]), .bo = as_col(in[8])};
}
}  // namespace

OpCase attention_case() {
  OpCase c{.name = "attention",
           .default_shapes = {{.N = 1, .D = 1, .H = 1}, {.N = 5, .D = 6, .H = 2}, {.N = 16, .D = 32, .H = 4}}};
  c.make = [](const CaseParams& cp, std::uint64_t seed) {
    const Dims& d = cp.dims;
    Problem p{.op = "attention", .shape = shape_string({{"N", d.N}, {"D", d.D}, {"H", d.H}}), .mask = "causal",
              .seed = seed};
    require_sizes(d.D % d.H == 0, p.op, p.shape, "H to divide D");
    Rng rng(seed);
    const double wscale = 1.0 / std::sqrt(static_cast<double>(d.D));
    p.inputs = {{"x", rng.normal(d.D, d.N)}};
    for (const char* name : {"q", "k", "v", "o"}) {
      p.inputs.push_back({std::string("w") + name, rng.normal(d.D, d.D, wscale)});
      p.inputs.push_back({std::string("b") + name, rng.normal(d.D, 1, 0.1)});
    }
    const auto heads = static_cast<arma::uword>(d.H);
    p.outputs = {"y"};
    p.forward = erase_forward([heads]<class T>(const Mats<T>& in) -> Mats<T> {
      ref::AttentionCache<T> cache;
      return {ref::attention_forward(in[0], params(in), ref::AttentionConfig<T>{.heads = heads}, cache)};
    });
    p.backward = erase_backward([heads]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T> {
      ref::AttentionCache<T> cache;
      const ref::AttentionParams<T> prm = params(in);
      ref::attention_forward(in[0], prm, ref::AttentionConfig<T>{.heads = heads}, cache);
      ref::AttentionGrads<T> g = ref::attention_backward(dout[0], prm, cache);
      return {g.dx, g.dp.wq, g.dp.bq, g.dp.wk, g.dp.bk, g.dp.wv, g.dp.bv, g.dp.wo, g.dp.bo};
    });
    p.twin = [h = d.H](const TorchTensors& in) -> TorchTensors {
      return {twin::attention(in[0], {in[1], in[2], in[3], in[4], in[5], in[6], in[7], in[8]}, h, true)};
    };
    return p;
  };
  return c;
}

}  // namespace ped::verify
