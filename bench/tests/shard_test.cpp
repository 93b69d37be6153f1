// Sharded sweeps: the cost model (bench_config.hpp), the plan and the registration of one shard
// (harness.hpp), --shard and --list-cases, and the settings line of the shard manifest.
#include "bench/bench_config.hpp"
#include "bench/harness.hpp"
#include "core/shard.hpp"

#include "bench/tests/parse_args.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace ped::bench {
namespace {

struct Sweep {
  std::vector<std::string> keys;
  std::vector<std::uint64_t> costs;
};

// The planned cases of `config`'s sweep, the plan discarded (nothing registered).
Sweep planned(const BenchConfig& config) {
  discard_plan();
  plan_sweep(config);
  Sweep sweep{planned_names(), planned_costs()};
  discard_plan();
  return sweep;
}

using testing::config_of;

std::string option_error(std::vector<std::string> args) {
  try {
    config_of(std::move(args));
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// The quick profile's sweep, and one without the gemm/ and layer benchmarks and the allocator probe.
std::vector<BenchConfig> sweeps() {
  BenchConfig quick = profile_config("quick");
  BenchConfig attention_only = quick;
  attention_only.gemm = false;
  attention_only.layers = false;
  attention_only.allocator_probe = false;
  return {quick, attention_only};
}

TEST(ShardedSweep, EveryCaseIsPlannedOnceInSweepOrder) {
  const BenchConfig config = profile_config("quick");
  const Sweep sweep = planned(config);
  std::vector<std::string> expected;
  expected.push_back("gemm/sgemm/float/M:1024/N:1024/K:1024/T:2");
  for (const AttentionCase& c : attention_cases(config)) expected.push_back(c.name());
  ASSERT_EQ(sweep.keys.size(), expected.size() + 12);  // 6 reference layers and their 6 LibTorch twins
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), sweep.keys.begin()));
  EXPECT_EQ(sweep.keys.back(), "layer/cross_entropy/libtorch/forward_backward/float/D:768/N:256/V:50257/T:2");
  std::vector<std::string> sorted = sweep.keys;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end()) << "a benchmark name twice";
  for (std::uint64_t cost : sweep.costs) EXPECT_GE(cost, 1u);
}

TEST(ShardedSweep, TheShardsPartitionTheSweep) {
  for (const BenchConfig& config : sweeps()) {
    const Sweep sweep = planned(config);
    ASSERT_GT(sweep.keys.size(), 7u);
    for (std::size_t n : {1, 2, 3, 7}) {
      std::vector<int> seen(sweep.keys.size(), 0);
      std::uint64_t largest = 0, total = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const std::vector<std::size_t> cases = shard_cases(sweep.costs, {i, n});
        EXPECT_FALSE(cases.empty()) << i << "/" << n;
        EXPECT_TRUE(std::is_sorted(cases.begin(), cases.end())) << "a shard runs its cases in sweep order";
        std::uint64_t cost = 0;
        for (std::size_t k : cases) {
          ++seen[k];
          cost += sweep.costs[k];
        }
        largest = std::max(largest, cost);
        total += cost;
      }
      for (std::size_t k = 0; k < seen.size(); ++k) EXPECT_EQ(seen[k], 1) << sweep.keys[k] << " at N = " << n;
      // Balanced by cost: no shard above the mean plus the largest single case.
      const std::uint64_t biggest = *std::max_element(sweep.costs.begin(), sweep.costs.end());
      EXPECT_LE(largest, total / n + biggest) << "N = " << n;
    }
  }
}

TEST(ShardedSweep, TheShardIsRegisteredInShardCasesOrder) {
  BenchConfig config = sweeps()[1];
  config.iterations = 1;
  const Sweep sweep = planned(config);
  const std::size_t before = registered_names().size();
  plan_sweep(config);
  const ShardSpec spec{1, 3};
  const std::vector<std::size_t> registered = register_shard(spec);
  EXPECT_EQ(registered, shard_cases(sweep.costs, spec));
  EXPECT_TRUE(planned_names().empty()) << "the plan is forgotten once registered";
  const std::vector<std::string>& names = registered_names();
  ASSERT_EQ(names.size(), before + registered.size());
  for (std::size_t k = 0; k < registered.size(); ++k) EXPECT_EQ(names[before + k], sweep.keys[registered[k]]);
  // The manifest of that shard lists the same cases of the same sweep.
  const ShardManifest m = make_shard_manifest(sweep.keys, sweep.costs, spec);
  EXPECT_EQ(m.case_indices, registered);
  EXPECT_EQ(m.cases_total, sweep.keys.size());
}

// Google Benchmark 1.7's iteration search, by hand: min_time 0.1 s, a call of 30 ms: 1 iteration
// (30 ms, 30 % of min_time: significant), then round(0.14 / 0.03 x 1) = 5 iterations (150 ms);
// the two later repetitions 5 each; the memory run 1 call; the phase timing 1 call; 7 runs of the
// function at 200 us each (the memory runs of later repetitions included).
TEST(CostModel, FollowsGoogleBenchmarksIterationSearch) {
  BenchConfig config = profile_config("quick");
  config.repetitions = 3;
  config.min_time = 0.1;
  const double expected_s = 0.03 + 0.15 + 2 * 0.15 + 0.03 + 0.03 + 7 * 200e-6;
  EXPECT_NEAR(static_cast<double>(timed_cost_us(0.03, 0.0, 1, config)), expected_s * 1e6, 1.0);
  // A setup of 1 ms in each run of the function but the later memory runs: 5 of them.
  EXPECT_NEAR(static_cast<double>(timed_cost_us(0.03, 1e-3, 1, config)), (expected_s + 5e-3) * 1e6, 1.0);
  // A tiny call: 1, 10, 100, ... iterations until 0.1 s; then about 1.4 min_time per repetition.
  const double tiny = static_cast<double>(timed_cost_us(1e-6, 0.0, 0, config));
  EXPECT_GT(tiny, 3 * 0.1e6);
  EXPECT_LT(tiny, 3 * 0.2e6);
  // Fixed iterations: exactly I calls per repetition, one more for memory.
  config.iterations = 4;
  EXPECT_NEAR(static_cast<double>(timed_cost_us(0.5, 0.0, 0, config)), (13 * 0.5 + 6 * 200e-6) * 1e6, 1.0);
  // A call longer than min_time runs once per repetition.
  config.iterations = 0;
  EXPECT_NEAR(static_cast<double>(timed_cost_us(2.0, 0.0, 0, config)), (4 * 2.0 + 6 * 200e-6) * 1e6, 1.0);
}

TEST(CostModel, GrowsWithTheSizesAndTheRepetitions) {
  BenchConfig config = profile_config("quick");
  config.memory_budget_gib = 1 << 20;  // nothing skipped
  for (const char* name : {"naive", "flash", "libtorch_sdpa"}) {
    for (const Pass pass : {Pass::forward, Pass::backward, Pass::forward_backward}) {
      AttentionCase c{.contender = Contender{name}, .pass = pass, .mask = Mask::causal(), .batch = 1, .heads = 8,
                      .seq_len = 4096, .head_dim = 64, .threads = 2};
      // Calls past min_time: the cost follows the FLOP.
      std::uint64_t previous = attention_case_cost(c, config);
      for (std::int64_t n : {8192, 16384}) {
        c.seq_len = n;
        const std::uint64_t cost = attention_case_cost(c, config);
        EXPECT_GT(cost, previous) << c.name();
        previous = cost;
      }
      // Fixed iterations: at every size.
      BenchConfig fixed = config;
      fixed.iterations = 2;
      c.seq_len = 64;
      previous = attention_case_cost(c, fixed);
      for (std::int64_t n : {128, 256, 512}) {
        c.seq_len = n;
        const std::uint64_t cost = attention_case_cost(c, fixed);
        EXPECT_GT(cost, previous) << c.name();
        previous = cost;
      }
      BenchConfig more = config;
      more.repetitions = 5;
      EXPECT_GT(attention_case_cost(c, more), attention_case_cost(c, config)) << c.name();
      EXPECT_GT(attention_case_cost(c, more), 5 * 0.1e6) << "each repetition takes min_time at least";
    }
  }
  // naive is slower than flash, flash's backward dearer than its forward.
  BenchConfig fixed = config;
  fixed.iterations = 1;
  AttentionCase c{.contender = Contender{"flash"}, .pass = Pass::forward, .mask = Mask::none(), .seq_len = 1024};
  AttentionCase naive = c;
  naive.contender = Contender{"naive"};
  AttentionCase backward = c;
  backward.pass = Pass::backward;
  EXPECT_GT(attention_case_cost(naive, fixed), attention_case_cost(c, fixed));
  EXPECT_GT(attention_case_cost(backward, fixed), attention_case_cost(c, fixed));
  // Over the memory budget: skipped, nearly free.
  BenchConfig tight = config;
  tight.memory_budget_gib = 1e-6;
  EXPECT_LT(attention_case_cost(c, tight), 10'000u);
  // The whole sweep's cost grows with the repetitions; the layers and the SGEMM have costs too.
  BenchConfig more = config;
  more.repetitions = 6;
  const Sweep base = planned(config), doubled = planned(more);
  ASSERT_EQ(base.costs.size(), doubled.costs.size());
  for (std::size_t k = 0; k < base.costs.size(); ++k) EXPECT_GT(doubled.costs[k], base.costs[k]) << base.keys[k];
  EXPECT_GT(layer_case_cost("feed_forward", false, 1024, config), layer_case_cost("feed_forward", false, 256, fixed));
  BenchConfig big = fixed;
  big.gemm_size = 2048;
  EXPECT_GT(gemm_case_cost(big), gemm_case_cost(fixed));
}

TEST(ListCases, TheTableListsEveryCaseWithItsShard) {
  const Sweep sweep = planned(sweeps()[1]);
  const std::string table = list_cases_table(sweep.keys, sweep.costs, 3);
  const std::vector<std::size_t> shard = assign_shards(sweep.costs, 3);
  std::istringstream in(table);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "shard\tcost\tcase");
  for (std::size_t k = 0; k < sweep.keys.size(); ++k) {
    ASSERT_TRUE(std::getline(in, line));
    EXPECT_EQ(line, std::to_string(shard[k]) + "\t" + std::to_string(sweep.costs[k]) + "\t" + sweep.keys[k]);
  }
  for (int s = 0; s < 3; ++s) {
    ASSERT_TRUE(std::getline(in, line));
    EXPECT_TRUE(line.starts_with("# shard " + std::to_string(s) + "/3: ")) << line;
  }
  EXPECT_FALSE(std::getline(in, line));
}

TEST(ShardOptions, ParsedCheckedAndTakenFromTheEnvironment) {
  EXPECT_EQ(config_of({}).shard, (ShardSpec{0, 1}));
  EXPECT_EQ(config_of({"--shard", "2/7"}).shard, (ShardSpec{2, 7}));
  EXPECT_EQ(config_of({"--shard=0/2"}).shard, (ShardSpec{0, 2}));
  ::setenv("PED_BENCH_SHARD", "1/3", 1);
  EXPECT_EQ(config_of({}).shard, (ShardSpec{1, 3}));
  EXPECT_EQ(config_of({"--shard", "0/3"}).shard, (ShardSpec{0, 3}));  // the command line wins
  ::setenv("PED_BENCH_SHARD", "3/3", 1);
  EXPECT_EQ(option_error({}), "bench: --shard '3/3': shard index 3 out of range, expected 0 <= I < N = 3");
  ::unsetenv("PED_BENCH_SHARD");
  EXPECT_EQ(option_error({"--shard", "3/3"}), "bench: --shard '3/3': shard index 3 out of range, expected 0 <= I < N = 3");
  for (const char* bad : {"0/0", "1", "-1/2", "1/2/3", "a/b", "", " 0/1", "0/100001"}) {
    const std::string error = option_error({std::string("--shard=") + bad});
    EXPECT_TRUE(error.starts_with("bench: --shard '")) << bad << ": " << error;
  }
  EXPECT_EQ(option_error({"--shard=0/1", "--shard=0/1"}), "bench: --shard is given more than once");
}

TEST(ShardOptions, ListCasesIsAFlag) {
  EXPECT_FALSE(config_of({}).list_cases);
  // Bare, it takes no value: the next argument stays an argument.
  std::vector<std::string> words = {"bench", "--list-cases", "--benchmark_filter=x", "--shard", "1/2"};
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(words.size());
  const BenchConfig config = parse_options(argc, argv.data());
  EXPECT_TRUE(config.list_cases);
  EXPECT_EQ(config.shard, (ShardSpec{1, 2}));
  ASSERT_EQ(argc, 2);
  EXPECT_EQ(std::string(argv[1]), "--benchmark_filter=x");
  EXPECT_TRUE(config_of({"--list-cases=on"}).list_cases);
  EXPECT_FALSE(config_of({"--list-cases=off"}).list_cases);
  ::setenv("PED_BENCH_LIST_CASES", "on", 1);
  EXPECT_TRUE(config_of({}).list_cases);
  ::unsetenv("PED_BENCH_LIST_CASES");
  EXPECT_EQ(option_error({"--list-cases=maybe"}), "bench: --list-cases expects on|off, got 'maybe'");
}

TEST(Settings, OneLineOfWhatChangesTheMeasurementsNotTheCaseList) {
  const BenchConfig base = profile_config("quick");
  const std::string line = describe_settings(base);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  for (const char* key : {"repetitions=3", ";min_time=0.1;", ";iterations=0;", ";memory_budget_gib=8;", ";allocator=tuned;",
                          ";allocator_probe=on;", ";gemm_size=1024;", ";copy_bytes=0;", ";layer_sizes=D:768/",
                          ";plugins=;", ";plugin_timeout=300;", ";OMP_WAIT_POLICY=", ";GOMP_SPINCOUNT=",
                          ";OMP_PROC_BIND="}) {
    EXPECT_NE(line.find(key), std::string::npos) << key << " in " << line;
  }
  // Each of these changes the line.
  std::vector<BenchConfig> changed(9, base);
  changed[0].repetitions = 5;
  changed[1].min_time = 0.2;
  changed[2].iterations = 3;
  changed[3].memory_budget_gib = 4;
  changed[4].allocator = AllocatorSetting::glibc_default;
  changed[5].allocator_probe = false;
  changed[6].gemm_size = 2048;
  changed[7].copy_bytes = 1 << 20;
  changed[8].layer_sizes.vocab = 1000;
  std::set<std::string> lines = {line};
  for (const BenchConfig& c : changed) EXPECT_TRUE(lines.insert(describe_settings(c)).second) << describe_settings(c);
  // A plugin by its file name, not its directory (shards may run from different paths).
  BenchConfig with_plugin = base;
  with_plugin.plugins = {"/a/b/libmy_attention.so", "other.so"};
  EXPECT_NE(describe_settings(with_plugin).find(";plugins=libmy_attention.so,other.so;"), std::string::npos)
      << describe_settings(with_plugin);
  // What the names carry does not: the case list's digest tells those apart.
  BenchConfig sizes = base;
  sizes.seq_lens = {64};
  sizes.threads = 1;
  sizes.contenders = {Contender{"flash"}};
  sizes.shard = {1, 2};
  sizes.list_cases = true;
  EXPECT_EQ(describe_settings(sizes), line);
  // The environment's OpenMP policy.
  const char* saved = std::getenv("OMP_PROC_BIND");
  const std::string keep = saved != nullptr ? saved : "";
  ::setenv("OMP_PROC_BIND", "close", 1);
  EXPECT_NE(describe_settings(base).find(";OMP_PROC_BIND=close"), std::string::npos);
  if (saved != nullptr) {
    ::setenv("OMP_PROC_BIND", keep.c_str(), 1);
  } else {
    ::unsetenv("OMP_PROC_BIND");
  }
}

}  // namespace
}  // namespace ped::bench
