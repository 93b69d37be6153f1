#include "reference/positional_embedding.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

OpCase positional_embedding_case() {
  OpCase c{.name = "positional_embedding",
           .default_shapes = {{.N = 1, .D = 1, .T = 1}, {.N = 5, .D = 3, .T = 9}, {.N = 40, .D = 16, .T = 64}}};
  c.make = [](const CaseParams& cp, std::uint64_t seed) {
    const Dims& d = cp.dims;
    Problem p{.op = "positional_embedding", .shape = shape_string({{"N", d.N}, {"D", d.D}, {"T", d.T}}), .seed = seed};
    require_sizes(d.N <= d.T, p.op, p.shape, "N <= T");
    Rng rng(seed);
    const auto n = static_cast<arma::uword>(d.N), table = static_cast<arma::uword>(d.T);
    const arma::uword offset = (table - n) / 2;  // positions not starting at 0 are covered too
    p.inputs = {{"wpe", rng.normal(d.D, d.T)}};
    p.outputs = {"p"};
    p.forward = erase_forward([n, offset]<class T>(const Mats<T>& in) -> Mats<T> {
      return {ref::positional_embedding_forward(in[0], n, offset)};
    });
    p.backward = erase_backward([table, offset]<class T>(const Mats<T>&, const Mats<T>& dout) -> Mats<T> {
      return {ref::positional_embedding_backward(dout[0], table, offset)};
    });
    p.twin = [n, offset](const TorchTensors& in) -> TorchTensors {
      return {in[0].narrow(1, static_cast<int64_t>(offset), static_cast<int64_t>(n))};
    };
    return p;
  };
  return c;
}

}  // namespace ped::verify
