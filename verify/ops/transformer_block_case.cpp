#include "reference/transformer_block.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

namespace {
// inputs: x, ln1_gamma, ln1_beta, wq, bq, wk, bk, wv, bv, wo, bo, ln2_gamma, ln2_beta, w1, b1, w2, b2
template <class T>
ref::TransformerBlockParams<T> params(const Mats<T>& in) {
  return {.ln1_gamma = as_col(in[1]),
          .ln1_beta = as_col(in[2]),
          .attn = {.wq = in[3], .wk = in[5], .wv = in[7], .wo = in[9],
                   .bq = as_col(in[4]), .bk = as_col(in[6]), .bv = as_col(in[8]), .bo = as_col(in[10])},
          .ln2_gamma = as_col(in[11]),
          .ln2_beta = as_col(in[12]),
          .mlp = {.w1 = in[13], .b1 = as_col(in[14]), .w2 = in[15], .b2 = as_col(in[16])}};
}
constexpr double kEps = 1e-5;
}  // namespace

OpCase transformer_block_case() {
  OpCase c{.name = "transformer_block",
           .default_shapes = {{.N = 1, .D = 2, .H = 1, .F = 3}, {.N = 5, .D = 6, .H = 2, .F = 12},
                              {.N = 16, .D = 32, .H = 4, .F = 64}}};
  c.make = [](const CaseParams& cp, std::uint64_t seed) {
    const Dims& d = cp.dims;
    Problem p{.op = "transformer_block", .shape = shape_string({{"N", d.N}, {"D", d.D}, {"H", d.H}, {"F", d.F}}),
              .mask = "causal", .seed = seed};
    require_sizes(d.D % d.H == 0, p.op, p.shape, "H to divide D");
    Rng rng(seed);
    const double wd = 1.0 / std::sqrt(static_cast<double>(d.D)), wf = 1.0 / std::sqrt(static_cast<double>(d.F));
    p.inputs = {{"x", rng.normal(d.D, d.N)}, {"ln1_gamma", 1.0 + 0.1 * rng.normal(d.D, 1)},
                {"ln1_beta", rng.normal(d.D, 1, 0.1)}};
    for (const char* name : {"q", "k", "v", "o"}) {
      p.inputs.push_back({std::string("w") + name, rng.normal(d.D, d.D, wd)});
      p.inputs.push_back({std::string("b") + name, rng.normal(d.D, 1, 0.1)});
    }
    p.inputs.push_back({"ln2_gamma", 1.0 + 0.1 * rng.normal(d.D, 1)});
    p.inputs.push_back({"ln2_beta", rng.normal(d.D, 1, 0.1)});
    p.inputs.push_back({"w1", rng.normal(d.F, d.D, wd)});
    p.inputs.push_back({"b1", rng.normal(d.F, 1, 0.1)});
    p.inputs.push_back({"w2", rng.normal(d.D, d.F, wf)});
    p.inputs.push_back({"b2", rng.normal(d.D, 1, 0.1)});
    const auto heads = static_cast<arma::uword>(d.H);
    auto config = [heads]<class T>(T) {
      return ref::TransformerBlockConfig<T>{.attn = {.heads = heads}, .approx = ref::GeluApprox::tanh, .eps = T(kEps)};
    };
    p.outputs = {"y"};
    p.forward = erase_forward([config]<class T>(const Mats<T>& in) -> Mats<T> {
      ref::TransformerBlockCache<T> cache;
      return {ref::transformer_block_forward(in[0], params(in), config(T{}), cache)};
    });
    p.backward = erase_backward([config]<class T>(const Mats<T>& in, const Mats<T>& dout) -> Mats<T> {
      ref::TransformerBlockCache<T> cache;
      const ref::TransformerBlockParams<T> prm = params(in);
      ref::transformer_block_forward(in[0], prm, config(T{}), cache);
      ref::TransformerBlockGrads<T> g = ref::transformer_block_backward(dout[0], prm, cache);
      const auto& a = g.dp.attn;
      const auto& m = g.dp.mlp;
      return {g.dx,   g.dp.ln1_gamma, g.dp.ln1_beta, a.wq, a.bq, a.wk, a.bk, a.wv, a.bv, a.wo, a.bo,
              g.dp.ln2_gamma, g.dp.ln2_beta, m.w1, m.b1, m.w2, m.b2};
    });
    p.twin = [h = d.H](const TorchTensors& in) -> TorchTensors {
      const at::Tensor x1 =
          in[0] + twin::attention(twin::layer_norm(in[0], in[1], in[2], kEps),
                                  {in[3], in[4], in[5], in[6], in[7], in[8], in[9], in[10]}, h, true);
      return {x1 + twin::feed_forward(twin::layer_norm(x1, in[11], in[12], kEps), in[13], in[14], in[15], in[16], "tanh")};
    };
    return p;
  };
  return c;
}

}  // namespace ped::verify
