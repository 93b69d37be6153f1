// verify/harness.hpp, the harness as a library: an attention implementation checked in process,
// the GoogleTest cases registered for one, and gradcheck of a layer given as two callables.
#include "verify/harness.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include "variants/registry.hpp"
#include "verify/checks.hpp"
#include "verify/sweep.hpp"

namespace ped::verify {
namespace {

AttentionImpl flash_as(const std::string& name) {
  AttentionImpl impl = attention_impl("flash");
  impl.name = name;
  impl.origin = "harness_test";
  return impl;
}

// Two small shapes and one seed: every reference and dtype, in a fraction of a second.
AttentionCheckOptions small_options() {
  AttentionCheckOptions o;
  o.shapes = {Dims{.N = 5, .H = 2, .B = 1, .Nk = 7, .Dh = 3}, Dims{.N = 9, .H = 1, .B = 2, .Dh = 4}};
  o.masks = {"none", "causal", "bigbird"};
  o.seeds = {1};
  return o;
}

TEST(Harness, CheckAttentionRunsEveryReferenceAndWritesTheCsv) {
  const std::string csv = (std::filesystem::temp_directory_path() / "harness_test_check_attention.csv").string();
  std::filesystem::remove(csv);
  AttentionCheckOptions o = small_options();
  o.csv_path = csv;
  const Verdict v = check_attention(flash_as("harness_good"), o);
  EXPECT_TRUE(v.passed()) << v.failure_report();
  EXPECT_EQ(v.failures(), 0u);
  EXPECT_EQ(v.failure_report(), "");
  std::set<std::string> references, ops, masks, dtypes;
  for (const CheckRow& r : v.rows) {
    EXPECT_EQ(r.variant, "harness_good");
    references.insert(r.reference);
    ops.insert(r.op);
    masks.insert(r.mask);
    dtypes.insert(r.dtype);
  }
  EXPECT_EQ(references, (std::set<std::string>{"naive", "libtorch", "finite_difference"}));
  // flash_as copies flash's declared features, so the feature sets run too.
  EXPECT_EQ(ops, (std::set<std::string>{"sdpa", "sdpa_large_scores", "sdpa_features"}));
  EXPECT_EQ(masks, (std::set<std::string>{"none", "causal", "bigbird"}));
  EXPECT_EQ(dtypes, (std::set<std::string>{"float", "double"}));
  // The CSV: verify's header and one line per row.
  std::ifstream in(csv);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line.rfind("op,variant,dtype,shape,mask,reference,quantity,", 0), 0u) << line;
  std::size_t lines = 0;
  while (std::getline(in, line)) ++lines;
  EXPECT_EQ(lines, v.rows.size());
  std::filesystem::remove(csv);
}

// A forward whose output is 1% off (the lse untouched): the check fails and names out.
TEST(Harness, CheckAttentionCatchesAWrongKernel) {
  AttentionImpl impl = flash_as("harness_wrong_out");
  const AttentionForwardFn<double> flash64 = impl.forward_f64;
  impl.forward_f64 = [flash64](const AttentionShape& s, const Mask& m, double scale, const double* q, const double* k,
                               const double* v, double* out, RowStatistic<double>* stats, const AttentionOptions& o) {
    flash64(s, m, scale, q, k, v, out, stats, o);
    for (std::int64_t e = 0; e < s.batch * s.heads * s.seq_q * s.head_dim; ++e) out[e] *= 1.01;
  };
  AttentionCheckOptions o = small_options();
  o.ops = {"sdpa"};
  const Verdict v = check_attention(impl, o);
  EXPECT_FALSE(v.passed());
  bool out_failed = false, lse_passed = false, float_passed = true;
  for (const CheckRow& r : v.rows) {
    if (r.dtype == "double" && r.quantity == "out" && !r.passed) out_failed = true;
    if (r.dtype == "double" && r.quantity == "lse" && r.passed) lse_passed = true;
    // float finite differences differentiate the (wrong) double forward: those fail too
    if (r.dtype == "float" && r.reference != "finite_difference" && !r.passed) float_passed = false;
  }
  EXPECT_TRUE(out_failed);
  EXPECT_TRUE(lse_passed);
  EXPECT_TRUE(float_passed);
  EXPECT_NE(v.failure_report().find("harness_wrong_out double"), std::string::npos) << v.failure_report();
  EXPECT_NE(v.failure_report().find(": out norm_rel_err "), std::string::npos) << v.failure_report();
}

// An isolated implementation that never returns: each check ends at the options' time limit as a
// failed row naming it, and check_attention returns.
TEST(Harness, CheckAttentionEndsAHangingCheckAtItsTimeLimit) {
  AttentionImpl impl = flash_as("harness_hangs");
  impl.forward_f32 = [](const AttentionShape&, const Mask&, float, const float*, const float*, const float*, float*,
                        RowStatistic<float>*, const AttentionOptions&) {
    for (;;) ::pause();
  };
  impl.forward_f64 = nullptr;
  impl.backward_f32 = nullptr;
  impl.backward_f64 = nullptr;
  impl.mask_kinds = mask_kind_bit(Mask::Kind::none);
  impl.isolate = true;
  AttentionCheckOptions o = small_options();
  o.ops = {"sdpa"};
  o.shapes = {Dims{.N = 5, .H = 1, .B = 1, .Nk = 5, .Dh = 2}};
  o.seeds = {1};
  o.isolated_time_limit = std::chrono::milliseconds(200);
  const Verdict v = check_attention(impl, o);
  EXPECT_FALSE(v.passed());
  ASSERT_FALSE(v.rows.empty());
  for (const CheckRow& r : v.rows) {
    EXPECT_FALSE(r.passed);
    EXPECT_EQ(r.quantity, "*");
    EXPECT_NE(r.detail.find("did not finish within 0.2 s and was killed"), std::string::npos) << r.detail;
  }
  o.isolated_time_limit = std::chrono::milliseconds(0);
  EXPECT_THROW(check_attention("harness_hangs", o), std::invalid_argument);
}

TEST(Harness, CheckAttentionRefusesWhatChecksNothing) {
  register_attention_impl(flash_as("harness_refusals"));
  AttentionCheckOptions o = small_options();
  o.ops = {"linear"};
  EXPECT_THROW(check_attention("harness_refusals", o), std::invalid_argument);  // not an attention op
  o = small_options();
  o.masks = {"no_such_mask"};
  EXPECT_THROW(check_attention("harness_refusals", o), std::invalid_argument);
  o = small_options();
  o.dtypes = {};
  EXPECT_THROW(check_attention("harness_refusals", o), std::invalid_argument);
  EXPECT_THROW(check_attention("harness_no_such_kernel", small_options()), std::invalid_argument);
  EXPECT_THROW(check_attention(flash_as("harness_refusals"), small_options()), std::invalid_argument);  // name taken
  // A kernel that takes only causal masks, asked for none and bigbird: nothing to check.
  AttentionImpl causal_only = flash_as("harness_causal_only");
  causal_only.mask_kinds = mask_kind_bit(Mask::Kind::causal);
  register_attention_impl(causal_only);
  o = small_options();
  o.masks = {"none", "bigbird"};
  EXPECT_THROW(check_attention("harness_causal_only", o), std::invalid_argument);
}

// options.masks takes what verify --masks takes, by the same code: a concrete mask runs as it is and
// its rows carry its name; a text that is neither a family nor a mask is refused naming it.
TEST(Harness, CheckAttentionTakesConcreteMasks) {
  AttentionCheckOptions o = small_options();
  o.ops = {"sdpa"};
  o.masks = {"sliding_window(left=2,right=0)", "causal"};
  const Verdict v = check_attention(flash_as("harness_concrete"), o);
  EXPECT_TRUE(v.passed()) << v.failure_report();
  std::set<std::string> masks;
  for (const CheckRow& r : v.rows) masks.insert(r.mask);
  EXPECT_EQ(masks, (std::set<std::string>{"sliding_window(left=2,right=0)", "causal"}));
  o.masks = {"sliding_window(left=2)"};
  try {
    check_attention("harness_concrete", o);
    ADD_FAILURE() << "sliding_window(left=2) accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("check_attention(harness_concrete): masks: --masks 'sliding_window(left=2)': "
                                         "neither a mask family"),
              std::string::npos)
        << e.what();
  }
  // An explicit layout of one block of 8 x 8 does not fit N = 9: refused before any check.
  o.masks = {"explicit_blocks(block_q=8,block_k=8,rows=1,cols=1,visible=1)"};
  EXPECT_THROW(check_attention("harness_concrete", o), std::invalid_argument);
}

// register_attention_tests at namespace scope, as a user's test file does: the cases below run as
// part of this executable, and Harness.RegisteredCases checks their names.
AttentionCheckOptions registered_options() {
  AttentionCheckOptions o = small_options();
  o.masks = {"causal", "sliding_window"};
  return o;
}
PED_ATTENTION_TESTS(HarnessRegisteredFlash, flash_as("harness_registered"), registered_options());
AttentionCheckOptions registered_concrete_options() {
  AttentionCheckOptions o = small_options();
  o.ops = {"sdpa"};
  o.masks = {"sliding_window(left=2,right=0)"};
  o.dtypes = {Dtype::f64};
  o.references = {Reference::libtorch};
  return o;
}
PED_ATTENTION_TESTS(HarnessRegisteredConcrete, flash_as("harness_registered_concrete"), registered_concrete_options());

TEST(Harness, RegisteredCases) {
  const testing::UnitTest& unit = *testing::UnitTest::GetInstance();
  std::set<std::string> names;
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    const testing::TestSuite& suite = *unit.GetTestSuite(i);
    if (std::string(suite.name()) != "HarnessRegisteredFlash") continue;
    for (int j = 0; j < suite.total_test_count(); ++j) names.insert(suite.GetTestInfo(j)->name());
  }
  // sdpa: causal and sliding_window x float, double x naive, libtorch, finite_difference;
  // sdpa_features (its feature sets take none and causal: causal of the two) likewise;
  // sdpa_large_scores (causal only of the two; no finite differences): x float, double x naive, libtorch.
  std::set<std::string> expected;
  for (const char* dtype : {"float", "double"}) {
    for (const char* ref : {"naive", "libtorch", "finite_difference"}) {
      for (const char* mask : {"causal", "sliding_window"}) expected.insert(std::string("sdpa_") + dtype + "_" + ref + "_" + mask);
      expected.insert(std::string("sdpa_features_") + dtype + "_" + ref + "_causal");
    }
    for (const char* ref : {"naive", "libtorch"}) expected.insert(std::string("sdpa_large_scores_") + dtype + "_" + ref + "_causal");
  }
  EXPECT_EQ(names, expected);
}

// A concrete mask's case is named by its Mask::name().
TEST(Harness, RegisteredCaseOfAConcreteMask) {
  const testing::UnitTest& unit = *testing::UnitTest::GetInstance();
  std::set<std::string> names;
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    const testing::TestSuite& suite = *unit.GetTestSuite(i);
    if (std::string(suite.name()) != "HarnessRegisteredConcrete") continue;
    for (int j = 0; j < suite.total_test_count(); ++j) names.insert(suite.GetTestInfo(j)->name());
  }
  EXPECT_EQ(names, (std::set<std::string>{"sdpa_double_libtorch_sliding_window(left=2,right=0)"}));
}

// A kernel that declares no AttentionFeatures gets no sdpa_features case (the default ops include
// that op): a registered case would have nothing to check and fail.
AttentionImpl plain_flash_as(const std::string& name) {
  AttentionImpl impl = flash_as(name);
  impl.features = 0;
  return impl;
}
PED_ATTENTION_TESTS(HarnessRegisteredPlain, plain_flash_as("harness_registered_plain"), registered_options());
TEST(Harness, NoFeatureCasesForAnImplementationWithoutFeatures) {
  const testing::UnitTest& unit = *testing::UnitTest::GetInstance();
  int cases = 0;
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    const testing::TestSuite& suite = *unit.GetTestSuite(i);
    if (std::string(suite.name()) != "HarnessRegisteredPlain") continue;
    for (int j = 0; j < suite.total_test_count(); ++j) {
      const std::string test = suite.GetTestInfo(j)->name();
      EXPECT_EQ(test.rfind("sdpa_features", 0), std::string::npos) << test;
      ++cases;
    }
  }
  EXPECT_GT(cases, 0);
}

// A kernel whose name is taken: one failing case that says so. Disabled, so that the suite passes;
// the CTest test verify_harness_taken_name_fails runs it and expects it to fail with the reason.
std::size_t taken_count = register_attention_tests("DISABLED_HarnessTakenName", flash_as("flash"), small_options());
TEST(Harness, ATakenNameIsOneFailingCase) {
  EXPECT_EQ(taken_count, 1u);
  const testing::UnitTest& unit = *testing::UnitTest::GetInstance();
  int found = 0;
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    const testing::TestSuite& suite = *unit.GetTestSuite(i);
    if (std::string(suite.name()) == "DISABLED_HarnessTakenName") {
      ASSERT_EQ(suite.total_test_count(), 1);
      EXPECT_STREQ(suite.GetTestInfo(0)->name(), "registration");
      ++found;
    }
  }
  EXPECT_EQ(found, 1);
}

// y = tanh(s * x) with s a parameter: dx = dy o s (1 - y^2), ds = sum(dy o x o (1 - y^2)).
struct ScaledTanh {
  static arma::mat forward(const std::vector<arma::mat>& in) { return arma::tanh(in[1](0, 0) * in[0]); }
  static std::vector<arma::mat> backward(const std::vector<arma::mat>& in, const arma::mat& dy) {
    const double s = in[1](0, 0);
    const arma::mat y = arma::tanh(s * in[0]);
    const arma::mat g = dy % (1 - arma::square(y));
    return {s * g, arma::mat(1, 1, arma::fill::value(arma::accu(g % in[0])))};
  }
};

std::vector<LayerInput> tanh_inputs() {
  Rng rng(3);
  return {{"x", rng.normal(4, 3)}, {"s", arma::mat(1, 1, arma::fill::value(0.7))}};
}

TEST(Harness, GradcheckPassesACorrectLayerWithTheFullJacobian) {
  const Verdict v = gradcheck(tanh_inputs(), ScaledTanh::forward, ScaledTanh::backward, {.name = "scaled_tanh"});
  EXPECT_TRUE(v.passed()) << v.failure_report();
  ASSERT_EQ(v.rows.size(), 2u);
  EXPECT_EQ(v.rows[0].quantity, "dx");
  EXPECT_EQ(v.rows[1].quantity, "ds");
  for (const CheckRow& r : v.rows) {
    EXPECT_EQ(r.op, "scaled_tanh");
    EXPECT_EQ(r.reference, "finite_difference");
    EXPECT_EQ(r.dtype, "double");
    EXPECT_EQ(r.shape, "x=4x3 s=1x1");
    EXPECT_EQ(r.tolerance, 1e-8);
    EXPECT_NE(r.detail.find("full Jacobian (12 x "), std::string::npos) << r.detail;
  }
}

TEST(Harness, GradcheckCatchesAWrongDerivativeInBothModes) {
  // The derivative of tanh taken as 1 - y instead of 1 - y^2: dx and ds wrong.
  const LayerBackward wrong = [](const std::vector<arma::mat>& in, const arma::mat& dy) {
    const double s = in[1](0, 0);
    const arma::mat g = dy % (1 - arma::tanh(s * in[0]));
    return std::vector<arma::mat>{s * g, arma::mat(1, 1, arma::fill::value(arma::accu(g % in[0])))};
  };
  for (std::size_t full_max : {std::size_t{20000}, std::size_t{0}}) {
    GradcheckOptions o{.name = "wrong_tanh"};
    o.fd.full_jacobian_max_entries = full_max;
    const Verdict v = gradcheck(tanh_inputs(), ScaledTanh::forward, wrong, o);
    ASSERT_EQ(v.rows.size(), 2u);
    EXPECT_FALSE(v.rows[0].passed);
    EXPECT_FALSE(v.rows[1].passed);
    EXPECT_GT(v.rows[0].metrics.norm_rel_err, 1e-2);
    EXPECT_NE(v.failure_report().find(": dx norm_rel_err "), std::string::npos) << v.failure_report();
    EXPECT_NE(v.rows[0].detail.find(full_max ? "full Jacobian" : "random directions"), std::string::npos);
  }
}

// gradcheck is verify's finite-difference check: on the layer norm of verify's own sweep it gives the
// same rows, bit for bit, as check_problem does.
TEST(Harness, GradcheckIsVerifysFiniteDifferenceCheck) {
  for (std::size_t full_max : {std::size_t{20000}, std::size_t{0}}) {
    const Problem p = find_op_case("layer_norm").make(CaseParams{Dims{.N = 3, .D = 5}}, 1);
    FiniteDifferenceOptions fd;
    fd.full_jacobian_max_entries = full_max;
    const std::vector<CheckRow> expected = check_problem(p, {Dtype::f64}, {Reference::finite_difference}, fd);
    std::vector<LayerInput> inputs;
    for (const Input& in : p.inputs) inputs.push_back({in.name, in.value});
    GradcheckOptions o{.name = "layer_norm", .fd = fd, .seed = p.seed};
    const Verdict v = gradcheck(
        inputs, [&](const std::vector<arma::mat>& in) { return p.forward(Dtype::f64, in).at(0); },
        [&](const std::vector<arma::mat>& in, const arma::mat& dy) { return p.backward(Dtype::f64, in, {dy}); }, o);
    ASSERT_EQ(v.rows.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(v.rows[i].quantity, expected[i].quantity);
      EXPECT_EQ(v.rows[i].metrics.norm_rel_err, expected[i].metrics.norm_rel_err) << v.rows[i].quantity;
      EXPECT_EQ(v.rows[i].metrics.max_abs_err, expected[i].metrics.max_abs_err) << v.rows[i].quantity;
      EXPECT_EQ(v.rows[i].tolerance, expected[i].tolerance);
      EXPECT_EQ(v.rows[i].detail, expected[i].detail);
      EXPECT_TRUE(v.rows[i].passed);
    }
  }
}

TEST(Harness, GradcheckRefusesBadArguments) {
  const std::vector<LayerInput> in = tanh_inputs();
  EXPECT_THROW(gradcheck({}, ScaledTanh::forward, ScaledTanh::backward), std::invalid_argument);
  EXPECT_THROW(gradcheck(in, LayerForward{}, ScaledTanh::backward), std::invalid_argument);
  EXPECT_THROW(gradcheck({{"x", in[0].value}, {"x", in[1].value}}, ScaledTanh::forward, ScaledTanh::backward),
               std::invalid_argument);
  EXPECT_THROW(gradcheck({{"", in[0].value}}, ScaledTanh::forward, ScaledTanh::backward), std::invalid_argument);
  EXPECT_THROW(gradcheck(in, ScaledTanh::forward, ScaledTanh::backward, {.tolerance = -1.0}), std::invalid_argument);
  // A tolerance given with its reason replaces the default and the rows say why.
  const Verdict v = gradcheck(in, ScaledTanh::forward, ScaledTanh::backward,
                              {.tolerance = 1e-6, .tolerance_reason = "a looser bound for the test"});
  EXPECT_EQ(v.rows.at(0).tolerance, 1e-6);
  EXPECT_NE(v.rows.at(0).detail.find("a looser bound for the test"), std::string::npos);
}

}  // namespace
}  // namespace ped::verify
