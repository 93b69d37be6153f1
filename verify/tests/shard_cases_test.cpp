// Sharded verify runs: the case list of the sweep (keys, costs, the settings line) and the verify
// command's --shard and --list-cases, run as a user runs them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/schemas.hpp"
#include "core/shard.hpp"
#include "reports/csv_io.hpp"
#include "verify/footprint.hpp"
#include "verify/sweep.hpp"

namespace ped::verify {
namespace {

namespace fs = std::filesystem;

TEST(SweepCases, KeysOfTheDefaultSweepAreUnique) {
  const SweepConfig config;
  const std::vector<PlannedProblem> planned = plan_sweep(config);
  const SweepCases cases = sweep_cases(planned, config);
  ASSERT_EQ(cases.keys.size(), planned.size());
  ASSERT_EQ(cases.costs.size(), planned.size());
  const std::set<std::string> distinct(cases.keys.begin(), cases.keys.end());
  EXPECT_EQ(distinct.size(), cases.keys.size());
  for (std::size_t i = 0; i < planned.size(); ++i) {
    const Problem& p = planned[i].problem;
    EXPECT_EQ(cases.keys[i], schema::verify_case_key(p.op, p.variant, p.shape, p.mask, p.seed));
    EXPECT_GE(cases.costs[i], 1u) << cases.keys[i];
  }
}

// The footprint a case's cost comes from is the footprint of that very problem: its shape text is
// the problem's, for every problem of the default sweep.
// A problem that no reference applies to (finite differences of flash_decode, which has no backward)
// would write no row: it is no case, so a shard's manifest never lists a case its CSV cannot hold;
// asked for by name, the variant is a usage error instead of a run that passes having checked nothing.
TEST(SweepCases, ProblemsWithoutACheckAreNoCases) {
  SweepConfig config;
  config.ops = {"sdpa"};
  config.seeds = {1};
  config.references = {Reference::finite_difference};
  const std::vector<PlannedProblem> planned = plan_sweep(config);
  std::set<std::string> variants;
  for (const PlannedProblem& pp : planned) {
    variants.insert(pp.problem.variant);
    bool checked = false;
    for (Dtype dt : config.dtypes) checked = checked || check_runs(pp.problem, dt, Reference::finite_difference);
    EXPECT_TRUE(checked) << case_key(pp.problem);
  }
  EXPECT_FALSE(variants.contains("flash_decode"));
  EXPECT_TRUE(variants.contains("flash"));
  config.variants = {"flash", "flash_decode"};
  try {
    plan_sweep(config);
    ADD_FAILURE() << "flash_decode under finite differences only was planned";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'flash_decode' has nothing to check"), std::string::npos) << e.what();
  }
}

TEST(SweepCases, TheFootprintNamesTheProblemsShape) {
  for (const PlannedProblem& pp : plan_sweep(SweepConfig{})) {
    EXPECT_EQ(footprint(pp.problem.op, pp.params.dims, pp.params.features).shape, pp.problem.shape)
        << case_key(pp.problem);
  }
}

// Two --shape items that differ only in a size the op does not use make two problems with one name.
TEST(SweepCases, ProblemsSharingAKeyAreRefused) {
  SweepConfig config;
  config.ops = {"layer_norm"};
  config.shapes = {parse_dims("N=3,D=4,F=5"), parse_dims("N=3,D=4,F=6")};
  config.seeds = {1};
  const std::vector<PlannedProblem> planned = plan_sweep(config);
  ASSERT_EQ(planned.size(), 2u);
  try {
    sweep_cases(planned, config);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'layer_norm |  | N=3 D=4 |  | seed=1'"), std::string::npos) << e.what();
  }
}

Footprint sized(double inputs, double outputs, double intermediates) {
  return Footprint{"x", inputs, inputs, outputs, intermediates};
}

TEST(CheckCost, FollowsTheModel) {
  FiniteDifferenceOptions fd;
  fd.full_jacobian_max_entries = 100;
  fd.directions = 3;
  const Footprint f = sized(10, 5, 20);  // outputs x inputs = 50: the full Jacobian
  const double ours = kEvaluationOverhead + 35, twin = kLibTorchEvaluationOverhead + 35;
  const double pass = 1 + kBackwardEvaluations;
  EXPECT_EQ(check_cost(f, 2, Dtype::f64, Reference::libtorch, fd, false), pass * (ours + twin));
  EXPECT_EQ(check_cost(f, 2, Dtype::f32, Reference::naive, fd, false), 2 * pass * ours);
  EXPECT_EQ(check_cost(f, 2, Dtype::bf16, Reference::libtorch, fd, false), pass * (2 * ours + twin));
  // full Jacobian: the base forward, 4 forwards per input element, a backward per output element
  EXPECT_EQ(check_cost(f, 2, Dtype::f64, Reference::finite_difference, fd, false),
            (1 + 4 * 10 + kBackwardEvaluations * 5) * ours);
  // random directions: the base forward and one backward, 4 forwards per direction and input tensor
  fd.full_jacobian_max_entries = 49;
  EXPECT_EQ(check_cost(f, 2, Dtype::f64, Reference::finite_difference, fd, false),
            (1 + kBackwardEvaluations + 4 * 2 * 3) * ours);
  EXPECT_EQ(check_cost(f, 2, Dtype::f64, Reference::libtorch, fd, true), pass * (ours + twin) + kChildProcessCost);
  // sizes count: a larger problem costs more
  EXPECT_GT(check_cost(sized(1000, 5, 20), 2, Dtype::f64, Reference::libtorch, fd, false),
            check_cost(f, 2, Dtype::f64, Reference::libtorch, fd, false));
  // saturates instead of wrapping
  EXPECT_EQ(check_cost(sized(1e18, 1e18, 1e18), 1, Dtype::f64, Reference::libtorch, fd, false), 9'000'000'000'000'000'000u);
}

// case_cost sums the checks check_problem runs: one dtype fewer, half the cost; finite differences
// only where they run.
TEST(CheckCost, CaseCostCountsTheChecksThatRun) {
  SweepConfig config;
  config.ops = {"layer_norm"};
  config.shapes = {parse_dims("N=3,D=4")};
  config.seeds = {1};
  const std::vector<PlannedProblem> both = plan_sweep(config);
  config.dtypes = {Dtype::f32};
  const std::vector<PlannedProblem> one = plan_sweep(config);
  ASSERT_EQ(both.size(), 1u);
  ASSERT_EQ(one.size(), 1u);
  SweepConfig both_dtypes = config;
  both_dtypes.dtypes = {Dtype::f32, Dtype::f64};
  EXPECT_EQ(case_cost(both[0], both_dtypes), 2 * case_cost(one[0], config));
  const Footprint f = footprint("layer_norm", config.shapes[0]);
  EXPECT_EQ(case_cost(one[0], config),
            check_cost(f, 3, Dtype::f32, Reference::libtorch, config.fd, false) +
                check_cost(f, 3, Dtype::f32, Reference::finite_difference, config.fd, false));
}

TEST(SweepSettings, TheDefaultSweepsManifestSaysDefault) {
  const SweepConfig config;
  const SweepCases cases = sweep_cases(plan_sweep(config), config);
  const ShardManifest m = verify_shard_manifest(cases, ShardSpec{1, 4}, config);
  EXPECT_EQ(m.tool, "verify");
  EXPECT_EQ(m.profile, "default");
  EXPECT_EQ(m.settings, default_sweep_settings());
  EXPECT_FALSE(m.git_rev.empty());
  EXPECT_FALSE(m.host_kind.empty());
  EXPECT_EQ(m.case_indices, shard_cases(cases.costs, ShardSpec{1, 4}));
  EXPECT_EQ(m.case_list_digest, case_list_digest(cases.keys, cases.costs));
  SweepConfig custom;
  custom.seeds = {1};
  EXPECT_EQ(verify_shard_manifest(sweep_cases(plan_sweep(custom), custom), ShardSpec{0, 1}, custom).profile, "custom");
  // The manifest reads back as written.
  EXPECT_EQ(parse_manifest_json(manifest_json(m), "m.json"), m);
}

TEST(SweepSettings, NameEveryOptionThatChangesCasesOrVerdicts) {
  const std::string base = default_sweep_settings();
  EXPECT_EQ(sweep_settings(SweepConfig{}), base);
  EXPECT_EQ(base.find('\n'), std::string::npos);
  SweepConfig same;
  same.seeds = {1, 2};
  same.memory_budget_gib = 100;  // refuses a selection or changes nothing
  EXPECT_EQ(sweep_settings(same), base);
  const auto differs = [&](auto change) {
    SweepConfig c;
    change(c);
    return sweep_settings(c) != base;
  };
  EXPECT_TRUE(differs([](SweepConfig& c) { c.ops = {"sdpa"}; }));
  EXPECT_TRUE(differs([](SweepConfig& c) { c.shapes = {parse_dims("N=5")}; }));
  EXPECT_TRUE(differs([](SweepConfig& c) { c.variants = {"flash"}; }));
  EXPECT_TRUE(differs([](SweepConfig& c) { c.masks = {"causal"}; }));
  EXPECT_TRUE(differs([](SweepConfig& c) { c.features = 0; }));
  EXPECT_TRUE(differs([](SweepConfig& c) { c.seeds = {2, 1}; }));
  EXPECT_TRUE(differs([](SweepConfig& c) { c.dtypes = {Dtype::f64}; }));
  EXPECT_TRUE(differs([](SweepConfig& c) { c.references = {Reference::libtorch}; }));
  EXPECT_TRUE(differs([](SweepConfig& c) { c.fd.full_jacobian_max_entries = 7; }));
  EXPECT_TRUE(differs([](SweepConfig& c) { c.fd.directions = 7; }));
  EXPECT_TRUE(differs([](SweepConfig& c) { c.tolerance_scale = 0.5; }));
  EXPECT_TRUE(differs([](SweepConfig& c) { c.isolated_time_limit = std::chrono::milliseconds(1000); }));
  // plugins by file name: the same library from another directory is the same setting
  EXPECT_EQ(sweep_settings(SweepConfig{}, {"/a/libk.so"}, "strided"), sweep_settings(SweepConfig{}, {"b/libk.so"}, "strided"));
  EXPECT_NE(sweep_settings(SweepConfig{}, {"/a/libk.so"}), base);
  EXPECT_NE(sweep_settings(SweepConfig{}, {"/a/libk.so"}, "strided"), sweep_settings(SweepConfig{}, {"/a/libk.so"}));
}

// ---- the verify command -------------------------------------------------------------------------

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class VerifyCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ped_verify_shard_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs verify in dir_ with `args`; its stdout in `stdout_text`. Returns the exit status.
  int verify(const std::string& args, std::string* stdout_text = nullptr) {
    const std::string command = "cd '" + dir_.string() + "' && '" PED_VERIFY_CLI "' " + args + " > stdout.txt 2> stderr.txt";
    const int status = std::system(command.c_str());
    if (stdout_text) *stdout_text = read_text(dir_ / "stdout.txt");
    stderr_ = read_text(dir_ / "stderr.txt");
    fs::remove(dir_ / "stdout.txt");
    fs::remove(dir_ / "stderr.txt");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::set<std::string> files() const {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.insert(e.path().filename().string());
    return names;
  }

  fs::path dir_;
  std::string stderr_;
};

// A few cases of two ops, every reference: attention kernels with masks, and a reference layer.
const std::string kSelection =
    "--ops layer_norm,sdpa --variants flash,naive --masks none,causal --seeds 1 --shape N=3,D=4,H=2,Dh=3 --shape N=4,D=3,Dh=2 --quiet";

// The key of a CSV row: the case it belongs to.
std::string row_key(const reports::VerifyRow& r) {
  return schema::verify_case_key(r.op, r.variant, r.shape, r.mask, std::stoull(r.seed));
}

TEST_F(VerifyCommand, ShardsTogetherRunTheWholeSweepOnce) {
  std::string listed;
  ASSERT_EQ(verify(kSelection + " --list-cases", &listed), 0) << stderr_;
  std::vector<std::string> keys;  // the whole sweep's cases, in order
  for (const std::string& line : lines_of(listed)) {
    if (line.empty() || line[0] == '#' || line.rfind("shard\t", 0) == 0) continue;
    keys.push_back(line.substr(line.find('\t', line.find('\t') + 1) + 1));
  }
  ASSERT_EQ(keys.size(), 10u) << listed;  // 2 shapes x (layer_norm + sdpa: 2 variants x 2 masks)

  ASSERT_EQ(verify(kSelection + " --out all.csv"), 0) << stderr_;
  EXPECT_FALSE(fs::exists(dir_ / "all.shard.json")) << "no manifest without --shard";
  const std::vector<std::string> all_lines = lines_of(read_text(dir_ / "all.csv"));
  const std::multiset<std::string> all_rows(all_lines.begin() + 1, all_lines.end());
  std::set<std::string> all_keys;
  for (const reports::VerifyRow& r : reports::read_verify_csv(dir_ / "all.csv")) all_keys.insert(row_key(r));
  EXPECT_EQ(all_keys, std::set<std::string>(keys.begin(), keys.end()));

  for (std::size_t n : {2u, 3u}) {
    std::multiset<std::string> union_rows;
    std::map<std::string, std::size_t> shard_of;
    for (std::size_t i = 0; i < n; ++i) {
      const std::string spec = std::to_string(i) + "/" + std::to_string(n);
      std::ostringstream csv_name;  // s0of2.csv
      csv_name << "s" << i << "of" << n << ".csv";
      const std::string csv = csv_name.str();
      ASSERT_EQ(verify(kSelection + " --shard " + spec + " --out " + csv), 0) << spec << ": " << stderr_;
      const ShardManifest m = read_manifest_json(shard_manifest_path(dir_ / csv));
      EXPECT_EQ(m.tool, "verify");
      EXPECT_EQ(m.profile, "custom");
      EXPECT_EQ(m.shard, (ShardSpec{i, n}));
      EXPECT_EQ(m.cases_total, keys.size());
      EXPECT_NE(m.settings.find("ops=layer_norm,sdpa "), std::string::npos) << m.settings;
      EXPECT_FALSE(m.case_indices.empty()) << spec;
      // The manifest lists exactly the cases whose rows the CSV holds, in run order, each case's
      // rows together.
      std::vector<std::string> run_order;
      for (const reports::VerifyRow& r : reports::read_verify_csv(dir_ / csv)) {
        const std::string key = row_key(r);
        if (run_order.empty() || run_order.back() != key) run_order.push_back(key);
      }
      std::vector<std::string> listed_cases;
      for (std::size_t c : m.case_indices) listed_cases.push_back(keys.at(c));
      EXPECT_EQ(run_order, listed_cases) << spec;
      for (const std::string& key : listed_cases) {
        EXPECT_TRUE(shard_of.emplace(key, i).second) << key << " in two shards of " << n;
      }
      const std::vector<std::string> lines = lines_of(read_text(dir_ / csv));
      ASSERT_FALSE(lines.empty());
      EXPECT_EQ(lines[0], all_lines[0]);
      union_rows.insert(lines.begin() + 1, lines.end());
    }
    EXPECT_EQ(shard_of.size(), keys.size()) << "every case in some shard of " << n;
    EXPECT_EQ(union_rows, all_rows) << "the rows of the " << n << " shards are the unsharded run's";
  }
}

TEST_F(VerifyCommand, ListCasesPrintsTheTableAndWritesNothing) {
  std::string listed;
  ASSERT_EQ(verify(kSelection + " --list-cases --shard 1/3", &listed), 0) << stderr_;
  SweepConfig config;
  config.ops = {"layer_norm", "sdpa"};
  config.variants = {"flash", "naive"};
  config.masks = {"none", "causal"};
  config.seeds = {1};
  config.shapes = {parse_dims("N=3,D=4,H=2,Dh=3"), parse_dims("N=4,D=3,Dh=2")};
  const SweepCases cases = sweep_cases(plan_sweep(config), config);
  EXPECT_EQ(listed, list_cases_table(cases.keys, cases.costs, 3));
  EXPECT_EQ(files(), std::set<std::string>{}) << "--list-cases writes nothing";
  ASSERT_EQ(verify("--ops layer_norm --seeds 1 --list-cases", &listed), 0) << stderr_;
  EXPECT_EQ(lines_of(listed).front(), "shard\tcost\tcase");
  EXPECT_NE(listed.find("\n0\t"), std::string::npos) << listed;
  EXPECT_NE(listed.find("# shard 0/1: "), std::string::npos) << listed;
}

TEST_F(VerifyCommand, AShardWithoutCasesWritesTheHeaderAndItsManifest) {
  const std::string one_case = "--ops layer_norm --shape N=3,D=4 --seeds 1 --references libtorch --quiet";
  ASSERT_EQ(verify(one_case + " --shard 0/2 --out a.csv"), 0) << stderr_;
  ASSERT_EQ(verify(one_case + " --shard 1/2 --out b.csv"), 0) << stderr_;
  EXPECT_GT(lines_of(read_text(dir_ / "a.csv")).size(), 1u);
  const std::vector<std::string> empty = lines_of(read_text(dir_ / "b.csv"));
  ASSERT_EQ(empty.size(), 1u) << "the header only";
  EXPECT_EQ(empty[0].rfind("op,variant,dtype,", 0), 0u) << empty[0];
  EXPECT_EQ(read_manifest_json(dir_ / "a.shard.json").case_indices, std::vector<std::size_t>{0});
  const ShardManifest m = read_manifest_json(dir_ / "b.shard.json");
  EXPECT_TRUE(m.case_indices.empty());
  EXPECT_EQ(m.cases_total, 1u);
  EXPECT_EQ(m.shard, (ShardSpec{1, 2}));
}

TEST_F(VerifyCommand, BadShardValuesWriteNothing) {
  for (const std::string bad : {"3/3", "0/0", "1", "-1/2", "a/2", "0/100001", "''"}) {
    EXPECT_EQ(verify("--ops layer_norm --seeds 1 --shard " + bad + " --out x.csv"), 2) << bad;
    EXPECT_EQ(stderr_.rfind("verify: --shard '", 0), 0u) << bad << ": " << stderr_;
    EXPECT_EQ(files(), std::set<std::string>{}) << bad;
  }
  EXPECT_EQ(verify("--ops layer_norm --seeds 1 --shard 3/3"), 2);
  EXPECT_EQ(stderr_, "verify: --shard '3/3': shard index 3 out of range, expected 0 <= I < N = 3\n");
  // --list-cases takes its N from --shard, and refuses a bad one as well.
  EXPECT_EQ(verify("--ops layer_norm --seeds 1 --list-cases --shard 2/2"), 2);
  EXPECT_EQ(files(), std::set<std::string>{});
}

}  // namespace
}  // namespace ped::verify
