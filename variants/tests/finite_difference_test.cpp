// Backward against central finite differences in double, full Jacobian-vector products on tiny
// shapes: for every input element x, d/dx sum(dout o out) by (L(x + h) - L(x - h)) / 2h.
#include <gtest/gtest.h>

#include <cmath>

#include "variants/tests/test_util.hpp"

namespace ped::test {
namespace {

// Tolerance: kTolFd (test_util.hpp).

void check_fd(const AttentionImpl& impl, const AttentionShape& shape, const Mask& mask) {
  SCOPED_TRACE(impl.name + " " + mask.name() + " " + shape_string(shape) + " seed=" + std::to_string(kSeed));
  Problem<double> p = make_problem<double>(shape, kSeed);
  const Result<double> r = run<double>(impl, p, mask);
  struct Input {
    std::vector<double>* x;
    const std::vector<double>* grad;
    const char* name;
  };
  for (const Input in : {Input{&p.q, &r.dq, "dq"}, Input{&p.k, &r.dk, "dk"}, Input{&p.v, &r.dv, "dv"}}) {
    EXPECT_LE(norm_rel_err(*in.grad, fd_gradient(impl, p, *in.x, mask)), kTolFd) << in.name;
  }
}

TEST(FiniteDifference, NaiveBackward) {
  const AttentionShape shapes[] = {{.batch = 1, .heads = 2, .seq_q = 3, .seq_k = 4, .head_dim = 3},
                                   {.batch = 2, .heads = 1, .seq_q = 5, .seq_k = 3, .head_dim = 2},
                                   {.batch = 1, .heads = 1, .seq_q = 1, .seq_k = 1, .head_dim = 1}};
  for (const AttentionShape& s : shapes) {
    for (const Mask& m : {Mask::none(), Mask::causal(), Mask::sliding_window(1, 1), Mask::strided(2, false)}) {
      check_fd(attention_impl("naive"), s, m);
    }
  }
}

// Every other built-in's backward also matches finite differences of its own forward.
TEST(FiniteDifference, EveryBuiltinBackward) {
  const AttentionShape s{.batch = 1, .heads = 1, .seq_q = 6, .seq_k = 5, .head_dim = 3};
  for (const AttentionImpl* impl : builtin_impls()) {
    if (impl->name == "naive") continue;  // swept above over more shapes and masks
    for (const Mask& m : {Mask::causal(), Mask::none()}) check_fd(*impl, s, m);
  }
}

}  // namespace
}  // namespace ped::test
