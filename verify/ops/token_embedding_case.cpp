#include "reference/token_embedding.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {

OpCase token_embedding_case() {
  OpCase c{.name = "token_embedding", .default_shapes = {{.N = 1, .D = 1, .V = 1}, {.N = 6, .D = 3, .V = 4},
                                                         {.N = 33, .D = 16, .V = 50}}};
  c.make = [](const CaseParams& cp, std::uint64_t seed) {
    const Dims& d = cp.dims;
    Problem p{.op = "token_embedding", .shape = shape_string({{"N", d.N}, {"D", d.D}, {"V", d.V}}), .seed = seed};
    Rng rng(seed);
    ref::TokenIds ids = rng.integers(d.N, 0, d.V);
    if (ids.size() >= 2) ids[1] = ids[0];  // a repeated id: its gradient columns must accumulate
    const auto vocab = static_cast<arma::uword>(d.V);
    p.inputs = {{"wte", rng.normal(d.D, d.V)}};
    p.outputs = {"x"};
    p.forward = erase_forward([ids]<class T>(const Mats<T>& in) -> Mats<T> {
      return {ref::token_embedding_forward(in[0], ids)};
    });
    p.backward = erase_backward([ids, vocab]<class T>(const Mats<T>&, const Mats<T>& dout) -> Mats<T> {
      return {ref::token_embedding_backward(dout[0], ids, vocab)};
    });
    p.twin = [ids](const TorchTensors& in) -> TorchTensors { return {in[0].index_select(1, twin::ids_tensor(ids))}; };
    return p;
  };
  return c;
}

}  // namespace ped::verify
