// The registry of attention implementations and verify: every registered implementation is a
// variant of the default sweep; one registered at run time (as a plugin is) is checked with only
// the dtypes, masks and passes it has; a wrong one fails; one marked `isolate` that crashes is a
// failed check naming the signal, and the other checks still run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "variants/registry.hpp"
#include "verify/checks.hpp"
#include "verify/ops/op_cases.hpp"

namespace ped::verify {
namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

TEST(Registry, EveryImplementationIsInTheVerifyDefaultSweep) {
  for (const char* op : {"sdpa", "sdpa_large_scores"}) {
    const OpCase& c = find_op_case(op);
    for (const AttentionImpl* impl : attention_impls()) {
      EXPECT_TRUE(contains(c.variants, impl->name)) << impl->name << " is not a variant of " << op;
    }
  }
}

// Rows of `variant` over the masks of op sdpa it takes, at two small shapes, seed 1.
std::vector<CheckRow> sweep_sdpa(const std::string& variant, std::vector<std::string>* masks_run = nullptr) {
  const OpCase c = sdpa_case();  // built now: sees implementations registered by the test
  EXPECT_TRUE(contains(c.variants, variant));
  std::vector<CheckRow> rows;
  for (const std::string& mask : c.masks) {
    for (const Dims& dims : {Dims{.N = 5, .H = 2, .B = 1, .Nk = 7, .Dh = 3}, Dims{.N = 9, .H = 1, .B = 2, .Dh = 4}}) {
      const CaseParams params{dims, variant, mask};
      if (c.runs && !c.runs(params)) continue;
      if (masks_run && !contains(*masks_run, mask)) masks_run->push_back(mask);
      const std::vector<CheckRow> part = check_problem(c.make(params, 1), {Dtype::f32, Dtype::f64}, c.references);
      rows.insert(rows.end(), part.begin(), part.end());
    }
  }
  return rows;
}

AttentionImpl flash_as(const std::string& name) {
  AttentionImpl impl = attention_impl("flash");
  impl.name = name;
  impl.origin = "registry_sweep_test";
  return impl;
}

// The sweep's op list follows the registry: an implementation registered after op_cases() was first
// called is a variant of the attention ops (and so can be checked by name).
TEST(Registry, OpCasesFollowTheRegistry) {
  ASSERT_FALSE(op_cases().empty());
  register_attention_impl(flash_as("verify_test_registered_late"));
  EXPECT_TRUE(contains(find_op_case("sdpa").variants, "verify_test_registered_late"));
  EXPECT_TRUE(contains(find_op_case("sdpa_large_scores").variants, "verify_test_registered_late"));
  EXPECT_TRUE(contains(find_op_case("gpt").variants, "verify_test_registered_late"));
  EXPECT_FALSE(contains(find_op_case("gpt_lora").variants, "verify_test_registered_late"));
}

TEST(Registry, ARegisteredImplementationIsCheckedWithWhatItHas) {
  AttentionImpl impl = flash_as("verify_test_forward_only");
  impl.forward_f64 = nullptr;
  impl.backward_f32 = nullptr;
  impl.backward_f64 = nullptr;
  impl.mask_kinds = mask_kind_bit(Mask::Kind::causal) | mask_kind_bit(Mask::Kind::none);
  register_attention_impl(impl);
  std::vector<std::string> masks;
  const std::vector<CheckRow> rows = sweep_sdpa("verify_test_forward_only", &masks);
  EXPECT_EQ(masks, (std::vector<std::string>{"none", "causal"}));
  ASSERT_FALSE(rows.empty());
  for (const CheckRow& r : rows) {
    EXPECT_TRUE(r.passed) << r.quantity << " " << r.detail;
    EXPECT_EQ(r.dtype, "float");                          // no double forward
    EXPECT_TRUE(r.quantity == "out" || r.quantity == "lse") << r.quantity;  // no backward
    EXPECT_NE(r.reference, "finite_difference");          // nothing to differentiate
  }
}

TEST(Registry, AWrongImplementationFailsOnTheWrongQuantity) {
  AttentionImpl impl = flash_as("verify_test_dq_zero");
  const AttentionBackwardFn<double> backward = impl.backward_f64;
  impl.backward_f64 = [backward](const AttentionShape& s, const Mask& m, double scale, const double* q,
                                 const double* k, const double* v, const double* out, const RowStatistic<double>* lse,
                                 const double* dout, double* dq, double* dk, double* dv, const AttentionOptions& o) {
    backward(s, m, scale, q, k, v, out, lse, dout, dq, dk, dv, o);
    std::fill(dq, dq + s.batch * s.heads * s.seq_q * s.head_dim, 0.0);
  };
  register_attention_impl(impl);
  std::size_t dq_failures = 0;
  for (const CheckRow& r : sweep_sdpa("verify_test_dq_zero")) {
    if (r.dtype == "double" && r.quantity == "dq") {
      dq_failures += r.passed ? 0 : 1;
    } else {
      EXPECT_TRUE(r.passed) << r.dtype << " " << r.quantity << " " << r.reference;
    }
  }
  EXPECT_GT(dq_failures, 0u);
}

// An isolated implementation that aborts on one shape: that shape's checks are failed rows naming
// the signal and the case; the other shape's checks pass.
TEST(Registry, ACrashInAnIsolatedImplementationIsAFailedCheck) {
  AttentionImpl impl = flash_as("verify_test_aborts");
  const AttentionForwardFn<float> forward = impl.forward_f32;
  impl.forward_f32 = [forward](const AttentionShape& s, const Mask& m, float scale, const float* q, const float* k,
                               const float* v, float* out, RowStatistic<float>* lse, const AttentionOptions& o) {
    if (s.seq_q == 9) std::abort();
    forward(s, m, scale, q, k, v, out, lse, o);
  };
  impl.forward_f64 = nullptr;
  impl.backward_f64 = nullptr;
  impl.mask_kinds = mask_kind_bit(Mask::Kind::none);
  impl.isolate = true;
  register_attention_impl(impl);
  std::size_t crashed = 0, passed = 0;
  for (const CheckRow& r : sweep_sdpa("verify_test_aborts")) {
    if (r.shape.find("Nq=9") != std::string::npos) {
      EXPECT_FALSE(r.passed);
      EXPECT_EQ(r.quantity, "*");
      EXPECT_NE(r.detail.find("killed by signal 6"), std::string::npos) << r.detail;
      EXPECT_NE(r.detail.find("sdpa/verify_test_aborts float [B=2 H=1 Nq=9"), std::string::npos) << r.detail;
      ++crashed;
    } else {
      EXPECT_TRUE(r.passed) << r.quantity << " " << r.reference << " " << r.detail;
      ++passed;
    }
  }
  EXPECT_EQ(crashed, 2u);  // naive and libtorch (finite differences need a double forward)
  EXPECT_GT(passed, 0u);
}

}  // namespace
}  // namespace ped::verify
