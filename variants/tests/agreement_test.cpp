// Every variant x every mask kind x {float, double} against the naive variant run in double on the
// same inputs: out, lse, dq, dk, dv by normwise relative error. B batch, H heads, Nq/Nk tokens, d head dim.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "variants/tests/test_util.hpp"

namespace ped::test {
namespace {

// Tolerances: kTolDouble, kTolFloat (test_util.hpp).

const std::vector<AttentionShape>& shapes() {
  static const std::vector<AttentionShape> s = {
      {.batch = 1, .heads = 1, .seq_q = 1, .seq_k = 1, .head_dim = 1},     // N = 1
      {.batch = 1, .heads = 1, .seq_q = 1, .seq_k = 9, .head_dim = 3},     // one query, Nq != Nk
      {.batch = 2, .heads = 2, .seq_q = 33, .seq_k = 33, .head_dim = 8},   // B, H > 1
      {.batch = 1, .heads = 2, .seq_q = 77, .seq_k = 45, .head_dim = 64},  // Nq > Nk: causal hides rows
      {.batch = 1, .heads = 1, .seq_q = 45, .seq_k = 130, .head_dim = 80}, // Nq < Nk, d = 80
      {.batch = 2, .heads = 1, .seq_q = 270, .seq_k = 270, .head_dim = 128}, // N > every default tile (flash 256)
  };
  return s;
}


template <class T>
std::vector<double> to_double(const std::vector<T>& x) {
  return std::vector<double>(x.begin(), x.end());
}

using Param = std::tuple<std::string, int, bool>;  // implementation name, mask index, is_double

class Agreement : public ::testing::TestWithParam<Param> {
 protected:
  template <class T>
  void check() {
    const auto [impl_name, mask_index, is_double] = GetParam();
    const AttentionImpl& impl = attention_impl(impl_name);
    const double tol = is_double ? kTolDouble : kTolFloat;
    for (const AttentionShape& shape : shapes()) {
      const NamedMask nm = mask_catalogue(shape.seq_q, shape.seq_k)[static_cast<std::size_t>(mask_index)];
      const Problem<T> p = make_problem<T>(shape, kSeed);
      // Reference: naive in double on exactly the same (rounded) inputs and scale.
      Problem<double> pd{shape, static_cast<double>(p.scale), to_double(p.q), to_double(p.k), to_double(p.v),
                         to_double(p.dout)};
      const Result<double> ref = run<double>(attention_impl("naive"), pd, nm.mask);
      for (const AttentionOptions& opt : tilings(impl)) {
        SCOPED_TRACE(impl_name + " " + nm.name + " " + shape_string(shape) + " tile_q=" +
                     std::to_string(opt.tile_q) + " tile_k=" + std::to_string(opt.tile_k) +
                     " block_size=" + std::to_string(opt.block_size) + " seed=" + std::to_string(kSeed));
        const Result<T> r = run<T>(impl, p, nm.mask, opt);
        for (const auto* x : {&r.out, &r.lse, &r.dq, &r.dk, &r.dv}) ASSERT_FALSE(has_nan_or_inf(*x));
        std::vector<std::pair<const char*, double>> errs = {{"out", norm_rel_err(to_double(r.out), ref.out)},
                                                            {"lse", norm_rel_err(to_double(r.lse), ref.lse)}};
        if (impl.has_backward<T>()) {  // forward-only implementations (flash_decode) have no gradients
          errs.insert(errs.end(), {{"dq", norm_rel_err(to_double(r.dq), ref.dq)},
                                   {"dk", norm_rel_err(to_double(r.dk), ref.dk)},
                                   {"dv", norm_rel_err(to_double(r.dv), ref.dv)}});
        }
        for (const auto& [name, err] : errs) {
          EXPECT_LE(err, tol) << name;
          note_worst("worst normwise relative error vs naive (double), seed " + std::to_string(kSeed),
                     impl_name + (is_double ? " double " : " float ") + name, err);
        }
      }
    }
  }
};

std::vector<std::string> builtin_impl_names() {
  std::vector<std::string> names;
  for (const AttentionImpl* impl : builtin_impls()) names.push_back(impl->name);
  return names;
}

TEST_P(Agreement, MatchesNaiveDouble) {
  if (std::get<2>(GetParam())) {
    check<double>();
  } else {
    check<float>();
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllVariantsMasksDtypes, Agreement,
    ::testing::Combine(::testing::ValuesIn(builtin_impl_names()),
                       ::testing::Range(0, static_cast<int>(mask_catalogue(8, 8).size())), ::testing::Bool()),
    [](const ::testing::TestParamInfo<Param>& info) {
      return std::get<0>(info.param) + "_" +
             mask_catalogue(8, 8)[static_cast<std::size_t>(std::get<1>(info.param))].name + "_" +
             (std::get<2>(info.param) ? "double" : "float");
    });

}  // namespace
}  // namespace ped::test
