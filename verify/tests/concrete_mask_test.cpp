// verify --masks takes, besides the sweep's mask families, any concrete mask in Mask::parse's text:
// the exact mask reaches the kernel, its rows carry its Mask::name() (which the CSV quotes and the
// reports reader reads back), and a text that is neither, or a mask that does not fit a shape, is
// refused before any problem is built.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "core/mask.hpp"
#include "reports/csv_io.hpp"
#include "variants/registry.hpp"
#include "verify/junit.hpp"
#include "verify/ops/op_cases.hpp"
#include "verify/report.hpp"
#include "verify/sweep.hpp"

namespace ped::verify {
namespace {

const std::string kWindow = "sliding_window(left=2,right=0)";

// The message of the std::invalid_argument that plan_sweep throws for `config` ("" if none).
std::string plan_error(const SweepConfig& config) {
  try {
    plan_sweep(config);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

SweepConfig small_sdpa(const std::string& variant, std::vector<std::string> masks) {
  SweepConfig config;
  config.ops = {"sdpa"};
  config.variants = {variant};
  config.masks = std::move(masks);
  config.shapes = {Dims{.N = 5, .H = 2, .B = 1, .Nk = 7, .Dh = 3}, Dims{.N = 9, .H = 1, .B = 2, .Dh = 4}};
  config.seeds = {1};
  return config;
}

// flash, except that its forward is 1% off for exactly one mask: only the rows of that mask can fail.
AttentionImpl flash_wrong_for(const std::string& name, const Mask& wrong) {
  AttentionImpl impl = attention_impl("flash");
  impl.name = name;
  impl.origin = "concrete_mask_test";
  const AttentionForwardFn<double> flash64 = impl.forward_f64;
  impl.forward_f64 = [flash64, wrong](const AttentionShape& s, const Mask& m, double scale, const double* q,
                                      const double* k, const double* v, double* out, RowStatistic<double>* stats,
                                      const AttentionOptions& o) {
    flash64(s, m, scale, q, k, v, out, stats, o);
    if (!(m == wrong)) return;
    for (std::int64_t e = 0; e < s.batch * s.heads * s.seq_q * s.head_dim; ++e) out[e] *= 1.01;
  };
  return impl;
}

TEST(ConcreteMasks, TheExactMaskReachesTheKernelAndItsRowsCarryItsName) {
  register_attention_impl(flash_wrong_for("concrete_mask_wrong_window", Mask::sliding_window(2, 0)));
  // The family sliding_window (the sweep's sample, left 3, right 2) and causal pass; the concrete
  // window the kernel gets wrong fails, in double (out) and only there.
  const std::vector<CheckRow> rows =
      run_sweep(small_sdpa("concrete_mask_wrong_window", {kWindow, "sliding_window", "causal"}));
  std::set<std::string> masks, failed_masks;
  std::set<std::string> shapes_of_window;
  for (const CheckRow& r : rows) {
    masks.insert(r.mask);
    if (!r.passed) failed_masks.insert(r.mask);
    if (r.mask == kWindow) shapes_of_window.insert(r.shape);
  }
  EXPECT_EQ(masks, (std::set<std::string>{kWindow, "sliding_window", "causal"}));
  EXPECT_EQ(failed_masks, (std::set<std::string>{kWindow}));
  EXPECT_EQ(shapes_of_window, (std::set<std::string>{"B=1 H=2 Nq=5 Nk=7 d=3", "B=2 H=1 Nq=9 Nk=9 d=4"}));
  const bool out_failed = std::any_of(rows.begin(), rows.end(), [](const CheckRow& r) {
    return r.mask == kWindow && r.dtype == "double" && r.quantity == "out" && !r.passed;
  });
  EXPECT_TRUE(out_failed);
}

// A mask whose name holds commas: the CSV quotes the cell, the reports reader reads the row back,
// and the cell parses back to the mask; the JUnit case name carries the same name.
TEST(ConcreteMasks, NameWithCommasRoundTripsThroughTheCsvAndJunit) {
  const Mask mask = Mask::causal() | Mask::global_tokens(2);
  const std::vector<CheckRow> rows = run_sweep(small_sdpa("flash", {mask.name()}));
  ASSERT_FALSE(rows.empty());
  for (const CheckRow& r : rows) {
    EXPECT_EQ(r.mask, "union(causal,global_tokens(count=2))");
    EXPECT_TRUE(r.passed) << r.quantity << " " << r.reference << " " << r.detail;
  }
  EXPECT_NE(junit_case_name(rows.front()).find(" mask=union(causal,global_tokens(count=2)) "), std::string::npos)
      << junit_case_name(rows.front());
  const std::filesystem::path csv = std::filesystem::temp_directory_path() / "concrete_mask_test.csv";
  write_csv_atomic(csv.string(), rows);
  const std::vector<reports::VerifyRow> read = reports::read_verify_csv(csv);
  std::filesystem::remove(csv);
  ASSERT_EQ(read.size(), rows.size());
  for (const reports::VerifyRow& r : read) {
    EXPECT_TRUE(Mask::parse(r.mask) == mask) << r.mask;
    EXPECT_TRUE(r.passed);
  }
}

TEST(ConcreteMasks, ListSplitsLikeBenchAndRefusesWhatIsNeitherFamilyNorMask) {
  EXPECT_EQ(parse_mask_list("causal,union(causal,global_tokens(count=2)),bigbird," + kWindow),
            (std::vector<std::string>{"causal", "union(causal,global_tokens(count=2))", "bigbird", kWindow}));
  EXPECT_TRUE(is_mask_family("bigbird"));
  EXPECT_FALSE(concrete_mask("bigbird").has_value());  // a family keeps its meaning
  EXPECT_TRUE(concrete_mask(kWindow) == Mask::sliding_window(2, 0));
  auto error = [](const std::string& text) {
    try {
      parse_mask_list(text);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error("causal,sliding_window(left=2").find(
                "--masks 'sliding_window(left=2': neither a mask family (none,causal,"),
            std::string::npos)
      << error("causal,sliding_window(left=2");
  EXPECT_NE(error("causal,sliding_window(left=2").find("Mask::parse: 'sliding_window(left=2'"), std::string::npos);
  EXPECT_NE(error("diagonal").find("--masks 'diagonal': neither a mask family"), std::string::npos) << error("diagonal");
  EXPECT_NE(error("causal,,none").find("--masks 'causal,,none': empty item"), std::string::npos);
  EXPECT_NE(error("").find("--masks '': empty"), std::string::npos);
  EXPECT_NE(error(kWindow + ",causal," + kWindow).find(kWindow + " is given twice"), std::string::npos);
  // plan_sweep reads its masks the same way (the harness and verify share it).
  EXPECT_NE(plan_error(small_sdpa("flash", {"window:4"})).find("--masks 'window:4': neither a mask family"),
            std::string::npos);
}

TEST(ConcreteMasks, AMaskThatDoesNotFitAShapeIsRefusedBeforeAnyWork) {
  // 8 x 8 blocks, one block: fits Nq = 5, Nk = 7 but not Nq = Nk = 9.
  const std::string layout = "explicit_blocks(block_q=8,block_k=8,rows=1,cols=1,visible=1)";
  const std::string message = plan_error(small_sdpa("flash", {layout}));
  EXPECT_NE(message.find("--masks '" + layout + "' does not fit a shape: op sdpa, shape B=2 H=1 Nq=9 Nk=9 d=4: "
                         "explicit block layout is (1 x 1) blocks of (8 x 8)"),
            std::string::npos)
      << message;
  SweepConfig fits = small_sdpa("flash", {layout});
  fits.shapes.pop_back();
  EXPECT_EQ(plan_error(fits), "");
}

TEST(ConcreteMasks, TheKernelsMaskKindsStillFilter) {
  AttentionImpl causal_only = attention_impl("flash");
  causal_only.name = "concrete_mask_causal_only";
  causal_only.mask_kinds = mask_kind_bit(Mask::Kind::causal);
  register_attention_impl(causal_only);
  // The window is skipped for it, as the family sliding_window would be; nothing is left to check.
  EXPECT_NE(plan_error(small_sdpa("concrete_mask_causal_only", {kWindow}))
                .find("--variants: 'concrete_mask_causal_only' has nothing to check"),
            std::string::npos);
  std::set<std::string> masks;
  for (const PlannedProblem& p : plan_sweep(small_sdpa("concrete_mask_causal_only", {kWindow, "causal"}))) {
    masks.insert(p.problem.mask);
  }
  EXPECT_EQ(masks, (std::set<std::string>{"causal"}));
}

// The whole model takes a concrete mask too; one that leaves a token without a key is refused.
TEST(ConcreteMasks, GptTakesConcreteMasks) {
  SweepConfig config;
  config.ops = {"gpt"};
  config.variants = {"flash"};
  config.masks = {"sliding_window(left=1,right=0)"};
  config.shapes = {Dims{.N = 4, .D = 8, .H = 2, .F = 12, .V = 7, .T = 5, .B = 2}};
  config.seeds = {1};
  const std::vector<CheckRow> rows = run_sweep(config);
  ASSERT_FALSE(rows.empty());
  for (const CheckRow& r : rows) {
    EXPECT_EQ(r.mask, "sliding_window(left=1,right=0)");
    EXPECT_TRUE(r.passed) << r.dtype << " " << r.reference << " " << r.quantity;
  }
  config.masks = {"explicit_blocks(block_q=2,block_k=2,rows=2,cols=2,visible=0011)"};
  EXPECT_NE(plan_error(config).find("op gpt, shape B=2 N=4 V=7 T=5 D=8 H=2 F=12: token 0 sees no key"),
            std::string::npos)
      << plan_error(config);
  // A family gpt does not list is still not gpt's.
  config.masks = {"bigbird"};
  EXPECT_NE(plan_error(config).find("op gpt has none of them (its masks: causal, or a concrete mask"),
            std::string::npos)
      << plan_error(config);
}

}  // namespace
}  // namespace ped::verify
