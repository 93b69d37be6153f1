// The memory estimate: exact for the inputs and outputs of every op (the part a formula can get
// wrong silently), and a selection above the budget refused before anything is allocated.
#include <gtest/gtest.h>

#include <optional>

#include "verify/footprint.hpp"
#include "verify/sweep.hpp"

namespace ped::verify {
namespace {

// Every size distinct, so that a formula using the wrong one is caught.
const Dims kDistinct{.N = 5, .D = 6, .H = 2, .F = 7, .V = 9, .T = 11, .R = 2, .I = 4, .O = 3, .K = 8, .B = 2, .Nk = 13, .Dh = 3};

TEST(Footprint, InputsAndOutputsOfEveryOpAreExact) {
  for (const OpCase& c : op_cases()) {
    std::vector<Dims> shapes = c.default_shapes;
    shapes.push_back(kDistinct);
    for (const std::string& feature_set : c.feature_sets)
    for (const Dims& dims : shapes) {
      // The first variant and mask that run the feature set (sdpa_features: an implementation that
      // declares its features); a set that no registered implementation declares has no problem yet.
      std::optional<CaseParams> params;
      for (const std::string& variant : c.variants) {
        for (const std::string& mask : c.masks) {
          if (!params && (!c.runs || c.runs(CaseParams{dims, variant, mask, feature_set}))) {
            params = CaseParams{dims, variant, mask, feature_set};
          }
        }
      }
      if (!params) continue;
      const Problem p = c.make(*params, 1);
      double inputs = 0, differentiable = 0, outputs = 0;
      for (const Input& in : p.inputs) {
        inputs += static_cast<double>(in.value.n_elem);
        if (in.differentiable) differentiable += static_cast<double>(in.value.n_elem);
      }
      for (const arma::mat& out : p.forward(Dtype::f64, p.input_values())) outputs += static_cast<double>(out.n_elem);
      const Footprint f = footprint(c.name, dims, feature_set);
      EXPECT_EQ(f.shape, p.shape) << c.name;
      EXPECT_EQ(f.inputs, inputs) << c.name << " [" << p.shape << "]";
      EXPECT_EQ(f.differentiable_inputs, differentiable) << c.name << " [" << p.shape << "]";
      EXPECT_EQ(f.outputs, outputs) << c.name << " [" << p.shape << "]";
      EXPECT_GE(f.intermediates, 0) << c.name;
    }
  }
}

TEST(Footprint, UnknownOpIsALogicError) { EXPECT_THROW(footprint("no_such_op", Dims{}), std::logic_error); }

TEST(Footprint, FullJacobianCountsOnlyUpToItsLimit) {
  // 1e4 outputs x 2.01e4 inputs: a full Jacobian of 2e8 entries when the limit allows it
  const Footprint f = footprint("linear", Dims{.N = 100, .I = 100, .O = 100});
  const double without = check_bytes(f, false, 20000);
  EXPECT_EQ(check_bytes(f, true, 20000), without + 16 * 20000.0);
  EXPECT_EQ(check_bytes(f, true, 0), without);
  EXPECT_EQ(check_bytes(f, true, 1'000'000'000), without + 16 * f.outputs * f.differentiable_inputs);
}

// Expects plan_sweep to throw std::invalid_argument whose message holds every one of `parts`.
void expect_refused(const SweepConfig& config, std::initializer_list<const char*> parts) {
  try {
    plan_sweep(config);
    ADD_FAILURE() << "plan_sweep accepted the selection; expected a refusal mentioning " << *parts.begin();
  } catch (const std::invalid_argument& e) {
    for (const char* part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(PlanSweep, SizesWhoseProductIsOverTheBudgetAreRefusedBeforeAllocating) {
  // 1e12 elements per input: allocating it would throw std::bad_alloc; the estimate refuses first
  SweepConfig config;
  config.ops = {"layer_norm"};
  config.shapes = {parse_dims("N=1000000,D=1000000")};
  expect_refused(config, {"--memory-budget-gib 8", "layer_norm [N=1000000 D=1000000]", "GiB"});
}

TEST(PlanSweep, ManyProblemsTogetherOverTheBudgetAreRefused) {
  // each problem fits, their inputs held together do not
  SweepConfig config;
  config.ops = {"residual"};
  config.shapes = {parse_dims("N=1000,D=1000")};  // 16 MB of inputs each
  config.seeds.clear();
  for (std::uint64_t s = 0; s < 100; ++s) config.seeds.push_back(s);
  config.memory_budget_gib = 1;
  expect_refused(config, {"--memory-budget-gib 1", "the 100 problems", "GiB"});
}

TEST(PlanSweep, RaisedFullJacobianLimitIsNamedWhenItIsTheCost) {
  SweepConfig config;
  config.ops = {"linear"};
  config.shapes = {parse_dims("N=1000,I=1000,O=1000")};
  config.fd.full_jacobian_max_entries = 1'000'000'000;  // 16 GB of Jacobians
  expect_refused(config, {"--memory-budget-gib 8", "--full-jacobian-max 1000000000"});
}

TEST(PlanSweep, TheDefaultSweepFitsTheDefaultBudget) { EXPECT_FALSE(plan_sweep(SweepConfig{}).empty()); }

TEST(PlanSweep, ANamedOpThatGetsNoCheckIsRefused) {
  SweepConfig config;
  config.ops = {"gpt"};
  config.masks = {"bigbird"};
  expect_refused(config, {"--masks 'bigbird'", "gpt", "causal"});
  config = SweepConfig{};
  config.ops = {"gpt_lora"};
  config.variants = {"blocked"};
  expect_refused(config, {"--variants 'blocked'", "gpt_lora"});
  config = SweepConfig{};
  config.ops = {"layer_norm"};
  config.references = {Reference::naive};
  expect_refused(config, {"--references 'naive'", "layer_norm"});
}

TEST(PlanSweep, UnnamedOpsWithoutTheChoiceAreLeftOutNotRefused) {
  // every op: only sdpa has bigbird among the ops with a mask choice; the others run as they are,
  // gpt (masks: causal) is left out
  SweepConfig config;
  config.masks = {"bigbird"};
  config.seeds = {1};
  bool saw_sdpa = false, saw_gpt = false;
  for (const PlannedProblem& p : plan_sweep(config)) {
    saw_sdpa |= p.problem.op == "sdpa";
    saw_gpt |= p.problem.op == "gpt";
  }
  EXPECT_TRUE(saw_sdpa);
  EXPECT_FALSE(saw_gpt);
}

TEST(PlanSweep, ShapeAnOpCannotTakeNamesTheOption) {
  SweepConfig config;
  config.ops = {"attention"};
  config.shapes = {parse_dims("N=4,D=6,H=4")};
  expect_refused(config, {"--shape", "attention", "H to divide D"});
}

TEST(ParseDims, MalformedShapesAreRefused) {
  for (const char* bad : {"", "N=3,,D=4", "N=3,", ",N=3", "N=3,N=4", "N=0", "N=1000001", "N=abc", "N3", "Q=3"}) {
    EXPECT_THROW(parse_dims(bad), std::invalid_argument) << "'" << bad << "'";
  }
  EXPECT_EQ(parse_dims("N=3,D=4"), (Dims{.N = 3, .D = 4}));
}

}  // namespace
}  // namespace ped::verify
