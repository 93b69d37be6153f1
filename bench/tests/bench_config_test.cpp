// The FLOP model, exact visible-pair counts, memory estimates and option parsing.
#include "bench/bench_config.hpp"

#include "bench/tests/parse_args.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <iterator>
#include <cstdlib>
#include <string>
#include <vector>

namespace ped::bench {
namespace {

AttentionShape square(std::int64_t b, std::int64_t h, std::int64_t n, std::int64_t d) {
  return {.batch = b, .heads = h, .seq_q = n, .seq_k = n, .head_dim = d};
}

TEST(FlopModel, FlashAttentionModelOnTinyShapes) {
  // forward 4 B H N^2 d: B=2, H=3, N=4, d=5 -> 4 * 2 * 3 * 16 * 5 = 1920
  const AttentionShape s = square(2, 3, 4, 5);
  EXPECT_DOUBLE_EQ(model_flop(Pass::forward, Mask::none(), s), 1920.0);
  EXPECT_DOUBLE_EQ(model_flop(Pass::forward, Mask::causal(), s), 960.0);
  EXPECT_DOUBLE_EQ(model_flop(Pass::backward, Mask::none(), s), 2.5 * 1920.0);
  EXPECT_DOUBLE_EQ(model_flop(Pass::forward_backward, Mask::causal(), s), 3.5 * 960.0);
}

TEST(FlopModel, VisiblePairsAreExact) {
  EXPECT_EQ(visible_pairs(Mask::none(), 4, 4), 16);
  EXPECT_EQ(visible_pairs(Mask::causal(), 4, 4), 10);  // 1 + 2 + 3 + 4
  EXPECT_EQ(visible_pairs(Mask::causal(), 1000, 1000), 1000 * 1001 / 2);
  // Causal window of 256 at N = 512: rows i < 256 see i + 1 keys, the other 256 rows see 257.
  EXPECT_EQ(visible_pairs(sliding_window_256(), 512, 512), 256 * 257 / 2 + 256 * 257);
  // At N <= 257 the causal window is plain causal.
  EXPECT_EQ(visible_pairs(sliding_window_256(), 256, 256), 256 * 257 / 2);
  // BigBird: fewer pairs than dense, at least the block diagonal.
  const std::int64_t bigbird = visible_pairs(bigbird_64(), 1024, 1024);
  EXPECT_LT(bigbird, 1024 * 1024);
  EXPECT_GE(bigbird, 16 * 64 * 64);
}

TEST(FlopModel, UsefulFlopCountsVisiblePairs) {
  const AttentionShape s = square(1, 2, 4, 3);
  EXPECT_DOUBLE_EQ(useful_flop(Pass::forward, 10, s), 4.0 * 2 * 10 * 3);
  EXPECT_DOUBLE_EQ(useful_flop(Pass::backward, 10, s), 2.5 * 4.0 * 2 * 10 * 3);
  EXPECT_DOUBLE_EQ(useful_flop(Pass::forward_backward, 10, s), 3.5 * 4.0 * 2 * 10 * 3);
  // For masks outside the FlashAttention model, the model value is the useful count.
  const AttentionShape t = square(1, 1, 512, 8);
  EXPECT_DOUBLE_EQ(model_flop(Pass::forward, sliding_window_256(), t),
                   useful_flop(Pass::forward, visible_pairs(sliding_window_256(), 512, 512), t));
}

TEST(MemoryBudget, EstimatesAndSkips) {
  AttentionCase c{.contender = Contender{"naive"}, .pass = Pass::backward, .mask = Mask::causal(), .batch = 1,
                  .heads = 8, .seq_len = 16384, .head_dim = 64, .threads = 2};
  // naive backward keeps P and dS of one (b, h) in double: 16 N^2 = 4 GiB at N = 16384.
  EXPECT_GE(estimated_bytes(c), std::int64_t{16} * 16384 * 16384);
  EXPECT_FALSE(over_budget(estimated_bytes(c), 8.0).has_value());
  c.contender = Contender::libtorch_composed;  // B H N^2 float scores, several times: above 8 GiB
  const auto why = over_budget(estimated_bytes(c), 8.0);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("needs "), std::string::npos);
  EXPECT_NE(why->find("> budget 8.00 GiB"), std::string::npos);
  EXPECT_EQ(*over_budget(std::int64_t{3} << 30, 1.0), "needs 3.00 GiB > budget 1.00 GiB");
  // Flash needs O(N d) memory only.
  c.contender = Contender{"flash"};
  EXPECT_LT(estimated_bytes(c), std::int64_t{1} << 30);
}

TEST(Options, OursAreRemovedGoogleBenchmarksStay) {
  std::vector<std::string> words = {"bench", "--profile", "full", "--threads=3", "--benchmark_filter=flash",
                                    "--masks", "causal,bigbird(block=64,window_radius=1,global_blocks=1,random_blocks=1,seed=20250101)", "--seq-lens=64,128", "--memory-budget-gib", "0.5"};
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(words.size());
  const BenchConfig config = parse_options(argc, argv.data());
  ASSERT_EQ(argc, 2);
  EXPECT_EQ(std::string(argv[1]), "--benchmark_filter=flash");
  EXPECT_EQ(config.profile, "full");
  EXPECT_EQ(config.threads, 3);
  EXPECT_EQ(config.masks, (std::vector<Mask>{Mask::causal(), bigbird_64()}));
  EXPECT_EQ(config.seq_lens, (std::vector<std::int64_t>{64, 128}));
  EXPECT_DOUBLE_EQ(config.memory_budget_gib, 0.5);
  EXPECT_EQ(config.head_dims, (std::vector<std::int64_t>{64, 128}));  // from the full profile
}

// --masks takes Mask::parse's texts, commas inside a mask's parentheses included; the benchmark
// name carries the mask's name() back.
TEST(Options, MasksInTheMaskSyntax) {
  const std::vector<Mask> masks =
      parse_masks("masks", "none,sliding_window(left=4,right=0),union(causal,global_tokens(count=2)),causal");
  ASSERT_EQ(masks.size(), 4u);
  EXPECT_TRUE(masks[0] == Mask::none());
  EXPECT_TRUE(masks[1] == Mask::sliding_window(4, 0));
  EXPECT_TRUE(masks[2] == (Mask::causal() | Mask::global_tokens(2)));
  EXPECT_TRUE(masks[3] == Mask::causal());
  const AttentionCase c{.mask = masks[2]};
  EXPECT_NE(c.name().find("/float/union(causal,global_tokens(count=2))/B:"), std::string::npos) << c.name();
  for (const std::string bad : {"sliding_window_256", "bigbird", "causal)", "sliding_window(left=4", ",causal",
                                "union(causal,)"}) {
    EXPECT_THROW(parse_masks("masks", bad), std::invalid_argument) << bad;
  }
  try {
    parse_masks("masks", "causal,window:4");
    ADD_FAILURE() << "window:4 accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("bench: --masks: Mask::parse: 'window:4'"), std::string::npos) << error.what();
  }
}

TEST(Options, EnvironmentIsTheDefaultAndBadValuesThrow) {
  ::setenv("PED_BENCH_HEADS", "4", 1);
  std::vector<std::string> words = {"bench"};
  std::vector<char*> argv = {words[0].data(), nullptr};
  int argc = 1;
  EXPECT_EQ(parse_options(argc, argv.data()).heads, 4);
  ::unsetenv("PED_BENCH_HEADS");
  for (std::string bad : {"--threads=0", "--masks=diagonal", "--profile=huge", "--no-such-option", "--seq-lens=",
                          "--masks=explicit_blocks(block_q=64,block_k=64,rows=1,cols=1,visible=1)"}) {
    std::vector<std::string> w = {"bench", bad};
    std::vector<char*> a = {w[0].data(), w[1].data(), nullptr};
    int n = 2;
    EXPECT_THROW(parse_options(n, a.data()), std::invalid_argument) << bad;
  }
}

// parse_options on {"bench", args...}: the message of the std::invalid_argument it throws, or "".
std::string option_error(std::vector<std::string> args) {
  args.insert(args.begin(), "bench");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(args.size());
  try {
    parse_options(argc, argv.data());
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(Options, EveryBadNumberOrListIsRefusedNamingTheOptionAndItsRange) {
  const std::vector<std::string> not_integers = {"-1", "0", "nan", "inf", "abc", "12abc", "", " 3", "+3", "1.5", "1e3",
                                                 "99999999999999999999999"};
  const std::vector<std::string> not_positive_reals = {"-1", "0", "nan", "-nan", "inf", "-inf", "1e999", "abc", "", " 1",
                                                       "1.5x"};
  const std::vector<std::pair<std::string, std::string>> past_range = {
      {"threads", "1025"},       {"seq-lens", "131073"},       {"head-dims", "1025"},      {"layer-tokens", "131073"},
      {"batch", "65537"},        {"heads", "65537"},           {"repetitions", "100001"},  {"iterations", "1000000000001"},
      {"gemm-size", "46341"},    {"memory-budget-gib", "1048577"}, {"min-time", "86401"}};
  std::vector<std::pair<std::string, std::string>> cases = past_range;
  for (const char* option : {"threads", "seq-lens", "head-dims", "layer-tokens", "batch", "heads", "repetitions",
                             "iterations", "gemm-size"}) {
    for (const std::string& value : not_integers) cases.emplace_back(option, value);
  }
  for (const char* option : {"memory-budget-gib", "min-time"}) {
    for (const std::string& value : not_positive_reals) cases.emplace_back(option, value);
  }
  for (const char* option : {"seq-lens", "head-dims", "layer-tokens"}) {
    for (const char* list : {"256,,512", ",256", "256,", ",", "256,abc", "256,-1"}) cases.emplace_back(option, list);
  }
  for (const auto& [option, list] : std::vector<std::pair<std::string, std::string>>{
           {"variants", "flash,,naive"}, {"variants", "flash,"}, {"passes", ",forward"}, {"masks", "causal,,none"},
           {"masks", ""}, {"variants", "flash,warp"}}) {
    cases.emplace_back(option, list);
  }
  for (const auto& [option, value] : cases) {
    const std::string error = option_error({"--" + option + "=" + value});
    EXPECT_NE(error.find("bench: --" + option), std::string::npos) << "--" << option << "=" << value << ": " << error;
    EXPECT_TRUE(error.find("expects") != std::string::npos || error.find("unknown name") != std::string::npos)
        << "--" << option << "=" << value << ": " << error;
  }
  // The range is in the message.
  EXPECT_EQ(option_error({"--seq-lens", "1,,2"}),
            "bench: --seq-lens expects a comma-separated list of an integer in [1, 131072], got an empty item in '1,,2'");
  EXPECT_EQ(option_error({"--threads=0"}), "bench: --threads expects an integer in [1, 1024], got '0'");
  EXPECT_EQ(option_error({"--min-time=nan"}), "bench: --min-time expects a finite number in (0, 86400], got 'nan'");
}

TEST(Options, AnOptionGivenTwiceIsRefused) {
  EXPECT_EQ(option_error({"--threads=1", "--threads=2"}), "bench: --threads is given more than once");
  EXPECT_EQ(option_error({"--seq-lens", "256", "--seq-lens=512"}), "bench: --seq-lens is given more than once");
  // The environment is a default, not a second value.
  ::setenv("PED_BENCH_THREADS", "3", 1);
  EXPECT_EQ(option_error({"--threads=1"}), "");
  ::unsetenv("PED_BENCH_THREADS");
}

TEST(Options, TheEnvironmentIsCheckedLikeTheCommandLine) {
  ::setenv("PED_BENCH_SEQ_LENS", "1,,2", 1);
  EXPECT_NE(option_error({}).find("bench: --seq-lens expects"), std::string::npos);
  ::unsetenv("PED_BENCH_SEQ_LENS");
}

TEST(Options, TheRangeLimitsThemselvesAreAccepted) {
  std::vector<std::string> words = {"bench", "--threads=1024", "--seq-lens=1,131072", "--head-dims=1024", "--batch=65536",
                                    "--heads=65536", "--gemm-size=46340", "--min-time=86400", "--memory-budget-gib=1048576",
                                    "--repetitions=100000", "--iterations=1000000000000", "--layer-tokens=131072"};
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(words.size());
  const BenchConfig config = parse_options(argc, argv.data());
  EXPECT_EQ(config.threads, 1024);
  EXPECT_EQ(config.seq_lens, (std::vector<std::int64_t>{1, 131072}));
  EXPECT_EQ(config.iterations, 1'000'000'000'000);
}

TEST(MemoryBudget, TheLargestAcceptedCaseIsEstimatedAndSkipped) {
  // B H N^2 at the option limits is 2^66 scores: the estimate must saturate, not wrap negative.
  for (const Contender& contender : {Contender{"naive"}, Contender{"flash"}, Contender::libtorch_composed}) {
    const AttentionCase c{.contender = contender, .pass = Pass::forward_backward, .mask = Mask::none(),
                          .batch = 65536, .heads = 65536, .seq_len = 131072, .head_dim = 1024, .threads = 1024};
    EXPECT_GT(estimated_bytes(c), std::int64_t{1} << 50) << to_string(contender);
    EXPECT_TRUE(over_budget(estimated_bytes(c), 1 << 20).has_value()) << to_string(contender);
  }
}

TEST(Names, FollowTheReportScheme) {
  const AttentionCase c{.contender = Contender::libtorch_sdpa, .pass = Pass::forward_backward,
                        .mask = sliding_window_256(), .batch = 1, .heads = 8, .seq_len = 1024,
                        .head_dim = 64, .threads = 2};
  EXPECT_EQ(c.name(), "attention/libtorch_sdpa/forward_backward/float/sliding_window(left=256,right=0)/B:1/H:8/N:1024/d:64/T:2");
}

TEST(Profiles, QuickAndFull) {
  const BenchConfig quick = profile_config("quick");
  EXPECT_EQ(quick.seq_lens, (std::vector<std::int64_t>{256, 512, 1024}));
  const BenchConfig full = profile_config("full");
  EXPECT_EQ(full.seq_lens.back(), 16384);
  EXPECT_EQ(full.masks.size(), 4u);
  // Our four kernels and the LibTorch baselines, 3 passes x 7 N x 2 d x 4 masks; flash_decode (forward
  // only) 7 N x 2 d x 4 masks; the allocator probe at d = 64, masks none and causal, forward and
  // forward_backward, 7 N.
  std::size_t baselines = 0;
  for (const LibTorchContender& t : libtorch_contenders()) baselines += t.glibc_default_probe ? 0 : 1;
  // The feature cases: grouped-query and variable-length, every contender x 2 passes x 3 N each, and
  // flash_decode (forward only, it declares both) x 3 N each; decoding, our five and libtorch_sdpa x
  // 2 H_kv x 2 Nq x 7 Nk.
  EXPECT_EQ(attention_cases(full).size(), (4u + baselines) * 3u * 7u * 2u * 4u + 7u * 2u * 4u + 2u * 2u * 7u +
                                              2u * (4u + baselines) * 2u * 3u + 2u * 3u + (5u + 1u) * 2u * 2u * 7u);
  EXPECT_EQ(full.decode_keys, (std::vector<std::int64_t>{1024, 2048, 4096, 8192, 16384, 32768, 65536}));
  EXPECT_EQ(quick.decode_keys, (std::vector<std::int64_t>{1024, 4096}));
  EXPECT_EQ(quick.decode_queries, (std::vector<std::int64_t>{1, 16}));
}

// The LibTorch contenders come from one list: each baseline is a contender of the profiles and a
// --variants name; the probe is neither, and every entry is LibTorch's.
TEST(LibTorchList, BaselinesAreContendersTheProbeIsNot) {
  const std::vector<Contender> all = all_contenders();
  std::size_t probes = 0;
  for (const LibTorchContender& t : libtorch_contenders()) {
    EXPECT_TRUE(is_libtorch(t.contender)) << t.contender.name;
    EXPECT_EQ(libtorch_contender(t.contender), &t);
    const bool listed = std::find(all.begin(), all.end(), t.contender) != all.end();
    EXPECT_EQ(listed, !t.glibc_default_probe) << t.contender.name;
    EXPECT_EQ(parse_contender(t.contender.name).has_value(), !t.glibc_default_probe) << t.contender.name;
    if (t.glibc_default_probe) {
      ++probes;
      EXPECT_EQ(t.contender.name, "libtorch_sdpa_glibc_default");
      EXPECT_EQ(t.formulation, LibTorchFormulation::sdpa);
    }
  }
  EXPECT_EQ(probes, 1u);
  EXPECT_EQ(libtorch_contender(Contender{"flash"}), nullptr);
  EXPECT_FALSE(is_libtorch(Contender{"flash"}));
}

using testing::config_of;

std::vector<std::string> names_of(const std::vector<AttentionCase>& cases) {
  std::vector<std::string> names;
  for (const AttentionCase& c : cases) names.push_back(c.name());
  return names;
}

// The probe runs libtorch_sdpa again under glibc's default, right after it, at the sweep's N for the
// first head dim, masks none and causal, passes forward and forward_backward; only in a tuned run
// with the probe on and libtorch_sdpa a contender.
TEST(AllocatorProbe, FollowsLibTorchSdpaOnItsSubset) {
  const std::vector<std::string> sweep = {"--variants=flash,libtorch_sdpa", "--seq-lens=256,512", "--head-dims=32,64",
                                          "--masks=causal,sliding_window(left=4,right=0)", "--passes=backward,forward"};
  const BenchConfig config = config_of(sweep);
  EXPECT_EQ(config.allocator, AllocatorSetting::tuned);
  EXPECT_TRUE(config.allocator_probe);
  const std::vector<std::string> names = names_of(attention_cases(config));
  const std::string probe = "attention/libtorch_sdpa_glibc_default/";
  std::vector<std::string> probes;
  for (const std::string& name : names) {
    if (name.starts_with(probe)) probes.push_back(name);
  }
  EXPECT_EQ(probes, (std::vector<std::string>{probe + "forward/float/causal/B:1/H:8/N:256/d:32/T:2",
                                              probe + "forward/float/causal/B:1/H:8/N:512/d:32/T:2"}));
  // Right after libtorch_sdpa's cases of the same pass and mask.
  const auto at = std::find(names.begin(), names.end(), probes.front());
  ASSERT_NE(at, names.begin());
  EXPECT_EQ(*std::prev(at), "attention/libtorch_sdpa/forward/float/causal/B:1/H:8/N:512/d:32/T:2");
  const auto has_probe = [&](const std::vector<AttentionCase>& cases) {
    return std::any_of(cases.begin(), cases.end(), [](const AttentionCase& c) {
      return libtorch_contender(c.contender) != nullptr && libtorch_contender(c.contender)->glibc_default_probe;
    });
  };
  std::vector<std::string> off = sweep;
  off.push_back("--allocator-probe=off");
  EXPECT_FALSE(has_probe(attention_cases(config_of(off))));
  std::vector<std::string> untuned = sweep;
  untuned.push_back("--allocator=default");
  EXPECT_EQ(config_of(untuned).allocator, AllocatorSetting::glibc_default);
  EXPECT_FALSE(has_probe(attention_cases(config_of(untuned))));
  EXPECT_FALSE(has_probe(attention_cases(config_of({"--variants=flash,libtorch_composed"}))));
  EXPECT_TRUE(has_probe(attention_cases(config_of({}))));  // the quick profile
}

TEST(Options, AllocatorAndProbeAreCheckedLikeTheOthers) {
  EXPECT_EQ(option_error({"--allocator=jemalloc"}), "bench: --allocator expects tuned|default, got 'jemalloc'");
  EXPECT_EQ(option_error({"--allocator", ""}), "bench: --allocator expects tuned|default, got ''");
  EXPECT_EQ(option_error({"--allocator=tuned", "--allocator=default"}), "bench: --allocator is given more than once");
  EXPECT_EQ(option_error({"--allocator-probe=maybe"}), "bench: --allocator-probe expects on|off, got 'maybe'");
  ::setenv("PED_BENCH_ALLOCATOR", "default", 1);
  EXPECT_EQ(config_of({}).allocator, AllocatorSetting::glibc_default);
  EXPECT_EQ(config_of({"--allocator=tuned"}).allocator, AllocatorSetting::tuned);  // the command line wins
  ::setenv("PED_BENCH_ALLOCATOR", "fast", 1);
  EXPECT_EQ(option_error({}), "bench: --allocator expects tuned|default, got 'fast'");
  ::unsetenv("PED_BENCH_ALLOCATOR");
  ::setenv("PED_BENCH_ALLOCATOR_PROBE", "off", 1);
  EXPECT_FALSE(config_of({}).allocator_probe);
  ::unsetenv("PED_BENCH_ALLOCATOR_PROBE");
}

bool has_cases(const std::vector<AttentionCase>& cases, const std::string& contender) {
  return std::any_of(cases.begin(), cases.end(), [&](const AttentionCase& c) { return c.contender.name == contender; });
}

// Every implementation of the registry is a contender of both profiles, with cases in their sweeps:
// a kernel registered but left out of bench fails here.
TEST(Registry, EveryImplementationIsInTheBenchSweep) {
  for (const char* profile : {"quick", "full"}) {
    const BenchConfig config = profile_config(profile);
    const std::vector<AttentionCase> cases = attention_cases(config);
    for (const AttentionImpl* impl : attention_impls()) {
      EXPECT_NE(std::find(config.contenders.begin(), config.contenders.end(), Contender{impl->name}),
                config.contenders.end())
          << impl->name << " is not a contender of profile " << profile;
      EXPECT_TRUE(has_cases(cases, impl->name)) << impl->name << " has no case in profile " << profile;
    }
    for (const LibTorchContender& t : libtorch_contenders()) EXPECT_TRUE(has_cases(cases, t.contender.name));
  }
}

// An implementation registered at run time (as a plugin is) joins the profiles and --variants, with
// only the passes and masks it runs, and without a working-memory estimate of its own.
TEST(Registry, ARegisteredImplementationJoinsTheSweep) {
  register_attention_impl({.name = "bench_test_forward_only",
                           .origin = "bench_config_test",
                           .mask_kinds = mask_kind_bit(Mask::Kind::causal),
                           .forward_f32 = [](const AttentionShape&, const Mask&, float, const float*, const float*,
                                             const float*, float*, RowStatistic<float>*, const AttentionOptions&) {}});
  const std::vector<AttentionCase> cases = attention_cases(profile_config("quick"));
  ASSERT_TRUE(has_cases(cases, "bench_test_forward_only"));
  for (const AttentionCase& c : cases) {
    if (c.contender.name != "bench_test_forward_only") continue;
    EXPECT_EQ(c.pass, Pass::forward) << c.name();
    EXPECT_TRUE(c.mask == Mask::causal()) << c.name();
    // It declares no feature: it joins the plain and decoding cases, never a grouped-query or
    // variable-length one.
    EXPECT_EQ(c.features(), 0u) << c.name();
    EXPECT_EQ(c.kv_heads(), c.heads) << c.name();
    // inputs, outputs and gradients only: 4 (B, H, Nq, d) and 4 (B, H, Nk, d) float tensors and 2 rows
    const double nq = static_cast<double>(c.queries()), nk = static_cast<double>(c.seq_len),
                 bh = static_cast<double>(c.batch * c.heads);
    EXPECT_EQ(estimated_bytes(c),
              static_cast<std::int64_t>(4 * bh * nq * c.head_dim * 4 + 4 * bh * nk * c.head_dim * 4 + 2 * bh * nq * 4));
  }
  EXPECT_TRUE(std::any_of(cases.begin(), cases.end(), [](const AttentionCase& c) {
    return c.contender.name == "bench_test_forward_only" && c.queries() != c.seq_len;
  }));
  std::vector<std::string> words = {"bench", "--variants=bench_test_forward_only,flash"};
  std::vector<char*> argv = {words[0].data(), words[1].data(), nullptr};
  int argc = 2;
  EXPECT_EQ(parse_options(argc, argv.data()).contenders,
            (std::vector<Contender>{Contender{"bench_test_forward_only"}, Contender{"flash"}}));
}

}  // namespace
}  // namespace ped::bench

namespace ped::bench {
namespace {

std::vector<AttentionCase> cases_of(const std::vector<AttentionCase>& all, bool (*kind)(const AttentionCase&)) {
  std::vector<AttentionCase> out;
  for (const AttentionCase& c : all) {
    if (kind(c)) out.push_back(c);
  }
  return out;
}
bool is_grouped(const AttentionCase& c) { return c.kv_heads() != c.heads && c.queries() == c.seq_len; }
bool is_varlen(const AttentionCase& c) { return c.lengths_seed.has_value(); }
bool is_decoding(const AttentionCase& c) { return c.queries() != c.seq_len; }

// The quick profile's feature cases, by hand: which contenders, passes, sizes and names.
TEST(FeatureCases, QuickProfileLists) {
  const BenchConfig quick = profile_config("quick");
  const std::vector<AttentionCase> all = attention_cases(quick);
  // Per N: 2 passes for an implementation declaring both features with a backward, 1 (forward) without.
  std::size_t feature_passes = 0, forward_f32 = 0, forward_gqa = 0;
  for (const AttentionImpl* impl : attention_impls()) {
    if (impl->name.find('[') != std::string::npos || !impl->supports<float>() || !impl->supports(Mask::causal())) continue;
    ++forward_f32;
    forward_gqa += impl->supports_features(attention_feature_bit(AttentionFeature::grouped_query)) ? 1 : 0;
    const std::uint32_t needed = attention_feature_bit(AttentionFeature::grouped_query) |
                                 attention_feature_bit(AttentionFeature::variable_length);
    if (impl->supports_features(needed)) feature_passes += impl->has_backward<float>() ? 2 : 1;
  }
  std::size_t baselines = 0;
  for (const LibTorchContender& t : libtorch_contenders()) baselines += t.glibc_default_probe ? 0 : 1;

  const std::vector<AttentionCase> grouped = cases_of(all, is_grouped);
  EXPECT_EQ(grouped.size(), (feature_passes + 2u * baselines) * 2u);  // passes x N 256, 512
  for (const AttentionCase& c : grouped) {
    EXPECT_EQ(c.heads, 8);
    EXPECT_EQ(c.kv_heads(), 2);
    EXPECT_TRUE(c.mask == Mask::causal());
    EXPECT_NE(c.pass, Pass::backward);
    EXPECT_TRUE(c.seq_len == 256 || c.seq_len == 512);
    EXPECT_NE(c.name().find("/H:8/Hkv:2/N:"), std::string::npos) << c.name();
  }
  const std::vector<AttentionCase> varlen = cases_of(all, is_varlen);
  EXPECT_EQ(varlen.size(), (feature_passes + 2u * baselines) * 2u);
  for (const AttentionCase& c : varlen) {
    EXPECT_EQ(c.batch, kVarlenBatch);
    EXPECT_EQ(c.kv_heads(), c.heads);
    EXPECT_TRUE(c.mask == Mask::causal());
    EXPECT_NE(c.name().find("/d:64/L:mixed(seed=20250101)/T:2"), std::string::npos) << c.name();
  }
  const std::vector<AttentionCase> decoding = cases_of(all, is_decoding);
  std::set<std::string> contenders;
  // 2 Nq x 2 Nk x 2 H_kv (8 and 2) for libtorch_sdpa and the implementations that declare
  // grouped_query, x 1 H_kv (8) for the others
  EXPECT_EQ(decoding.size(), (forward_f32 + forward_gqa + 2u) * 2u * 2u);
  for (const AttentionCase& c : decoding) {
    contenders.insert(c.contender.name);
    EXPECT_EQ(c.pass, Pass::forward);
    EXPECT_EQ(c.batch, 1);
    EXPECT_EQ(c.heads, 8);
    EXPECT_TRUE(c.kv_heads() == 8 || c.kv_heads() == 2);
    EXPECT_TRUE(c.queries() == 1 || c.queries() == 16);
    EXPECT_TRUE(c.seq_len == 1024 || c.seq_len == 4096);
    EXPECT_FALSE(c.lengths_seed.has_value());
  }
  EXPECT_TRUE(contenders.contains("libtorch_sdpa"));
  EXPECT_FALSE(contenders.contains("libtorch_composed"));
  EXPECT_FALSE(contenders.contains("libtorch_addmm"));
  for (const AttentionImpl* impl : attention_impls()) {
    // Whatever is registered with a float forward (a split-key decoding kernel, say) decodes.
    if (impl->name.find('[') == std::string::npos && impl->supports<float>() && impl->supports(Mask::causal())) {
      EXPECT_TRUE(contenders.contains(impl->name)) << impl->name;
    }
  }
  const AttentionCase decode{.contender = Contender{"flash"}, .batch = 1, .heads = 8, .seq_len = 1024, .head_dim = 64,
                             .threads = 2, .heads_kv = 2, .seq_q = 16};
  EXPECT_EQ(decode.name(), "attention/flash/forward/float/causal/B:1/H:8/Hkv:2/Nq:16/N:1024/d:64/T:2");
  // --cases picks kinds; plain alone is the sweep from before the features.
  BenchConfig plain = quick;
  plain.cases = {CaseKind::plain};
  for (const AttentionCase& c : attention_cases(plain)) {
    EXPECT_TRUE(!is_grouped(c) && !is_varlen(c) && !is_decoding(c)) << c.name();
  }
}

// FLOP, tokens and bytes of each feature case, computed here by hand.
TEST(FeatureCases, AccountingByHand) {
  // Grouped-query: every query head does its FLOP; K and V are H_kv heads.
  AttentionCase gqa{.contender = Contender{"flash"}, .pass = Pass::forward, .mask = Mask::causal(), .batch = 1,
                    .heads = 8, .seq_len = 64, .head_dim = 16, .threads = 1, .heads_kv = 2};
  EXPECT_EQ(case_visible_pairs(gqa), 64 * 65 / 2);
  EXPECT_DOUBLE_EQ(case_flop(gqa).model, 4.0 * 8 * 64 * 64 * 16 / 2);
  EXPECT_DOUBLE_EQ(case_flop(gqa).useful, 4.0 * 8 * 16 * (64 * 65 / 2));
  EXPECT_EQ(query_tokens(gqa), 64);
  EXPECT_DOUBLE_EQ(kv_bytes(gqa), 2.0 * 2 * 64 * 16 * 4);
  gqa.pass = Pass::forward_backward;
  EXPECT_DOUBLE_EQ(case_flop(gqa).useful, 3.5 * 4.0 * 8 * 16 * (64 * 65 / 2));
  EXPECT_EQ(gqa.features(), attention_feature_bit(AttentionFeature::grouped_query));

  // Variable lengths: only the pairs within each sequence, no padding.
  const std::vector<std::int64_t> lengths = mixed_lengths(7, 4, 64);
  ASSERT_EQ(lengths.size(), 4u);
  EXPECT_EQ(lengths[0], 64);
  EXPECT_EQ(mixed_lengths(7, 4, 64), lengths);  // deterministic
  EXPECT_NE(mixed_lengths(8, 4, 64), lengths);
  std::int64_t tokens = 0, pairs = 0;
  for (std::int64_t l : lengths) {
    EXPECT_GE(l, 8);
    EXPECT_LE(l, 64);
    tokens += l;
    pairs += l * (l + 1) / 2;
  }
  EXPECT_LT(tokens, 4 * 64) << "a batch of mixed lengths should hold padding";
  const AttentionCase varlen{.contender = Contender{"flash"}, .pass = Pass::forward, .mask = Mask::causal(),
                             .batch = 4, .heads = 2, .seq_len = 64, .head_dim = 16, .threads = 1, .lengths_seed = 7};
  EXPECT_EQ(varlen.lengths(), lengths);
  EXPECT_EQ(varlen.lengths_profile(), "mixed(seed=7)");
  EXPECT_EQ(case_visible_pairs(varlen), pairs);
  EXPECT_DOUBLE_EQ(case_flop(varlen).model, 4.0 * 2 * 16 * pairs);
  EXPECT_DOUBLE_EQ(case_flop(varlen).useful, 4.0 * 2 * 16 * pairs);
  EXPECT_EQ(query_tokens(varlen), tokens);
  EXPECT_DOUBLE_EQ(kv_bytes(varlen), 2.0 * 2 * 16 * 4 * tokens);
  EXPECT_EQ(varlen.features(), attention_feature_bit(AttentionFeature::variable_length));

  // Decoding, bottom-right causal: query i of 16 against 1024 keys sees keys 0 ... 1008 + i.
  AttentionCase decode{.contender = Contender{"flash"}, .pass = Pass::forward, .mask = Mask::causal(), .batch = 1,
                       .heads = 8, .seq_len = 1024, .head_dim = 64, .threads = 1, .heads_kv = 2, .seq_q = 16};
  std::int64_t decode_pairs = 0;
  for (std::int64_t i = 0; i < 16; ++i) decode_pairs += 1009 + i;
  EXPECT_EQ(case_visible_pairs(decode), decode_pairs);
  EXPECT_DOUBLE_EQ(case_flop(decode).model, 4.0 * 8 * 64 * decode_pairs);
  EXPECT_DOUBLE_EQ(case_flop(decode).useful, 4.0 * 8 * 64 * decode_pairs);
  EXPECT_EQ(query_tokens(decode), 16);
  EXPECT_DOUBLE_EQ(kv_bytes(decode), 2.0 * 2 * 1024 * 64 * 4);
  decode.seq_q = 1;
  EXPECT_EQ(case_visible_pairs(decode), 1024);
  EXPECT_DOUBLE_EQ(case_flop(decode).useful, 4.0 * 8 * 64 * 1024);
  // q, out, dout, dq (B, H, 1, d); k, v, dk, dv (B, H_kv, Nk, d); 2 rows of stats; flash's own working memory
  const AttentionImpl& flash = attention_impl("flash");
  EXPECT_EQ(estimated_bytes(decode),
            static_cast<std::int64_t>(4 * 8 * 64 * 4 + 4 * 2 * 1024 * 64 * 4 + 2 * 8 * 4 +
                                      (flash.working_bytes ? flash.working_bytes(decode.shape(), 4, 1, false) : 0.0)));

  EXPECT_THROW(mixed_lengths(1, 0, 64), std::invalid_argument);
  EXPECT_THROW(mixed_lengths(1, 4, 0), std::invalid_argument);
}

TEST(FeatureCases, OptionsAreChecked) {
  std::vector<std::string> words = {"bench", "--cases=decoding,grouped_query", "--heads-kv=4",
                                    "--decode-keys=256,512", "--decode-queries=2", "--feature-seq-lens=64",
                                    "--copy-bytes=4096"};
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(words.size());
  const BenchConfig config = parse_options(argc, argv.data());
  EXPECT_EQ(config.cases, (std::vector<CaseKind>{CaseKind::decoding, CaseKind::grouped_query}));
  EXPECT_EQ(config.heads_kv, 4);
  EXPECT_EQ(config.decode_keys, (std::vector<std::int64_t>{256, 512}));
  EXPECT_EQ(config.decode_queries, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(config.feature_seq_lens, (std::vector<std::int64_t>{64}));
  EXPECT_EQ(config.copy_bytes, 4096);
  for (const AttentionCase& c : attention_cases(config)) {
    EXPECT_TRUE(c.queries() != c.seq_len || c.kv_heads() == 4) << c.name();  // no plain case
  }
  const auto error_of = [](std::vector<std::string> args) {
    args.insert(args.begin(), "bench");
    std::vector<char*> v;
    for (std::string& a : args) v.push_back(a.data());
    v.push_back(nullptr);
    int n = static_cast<int>(args.size());
    try {
      parse_options(n, v.data());
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error_of({"--heads-kv=3"}),
            "bench: --heads-kv expects a divisor of --heads 8 below it (the grouped-query and decoding cases), got 3");
  EXPECT_EQ(error_of({"--heads-kv=8"}).substr(0, 26), "bench: --heads-kv expects ");
  EXPECT_EQ(error_of({"--heads-kv=3", "--cases=plain,variable_length"}), "");  // unused there
  EXPECT_EQ(error_of({"--cases=plain,sideways"}), "bench: --cases: unknown name 'sideways'");
  // Without --heads-kv, H_kv follows --heads: a run with 2 heads is multi-query, with 1 head has no
  // grouped-query case, and neither is an error.
  EXPECT_EQ(default_heads_kv(8), 2);
  EXPECT_EQ(default_heads_kv(12), 3);
  EXPECT_EQ(default_heads_kv(2), 1);
  EXPECT_EQ(default_heads_kv(1), 0);
  EXPECT_EQ(error_of({"--heads=2"}), "");
  EXPECT_EQ(error_of({"--heads=1"}), "");
  BenchConfig one = profile_config("quick");
  one.heads = 1;
  one.heads_kv = default_heads_kv(1);
  for (const AttentionCase& c : attention_cases(one)) {
    EXPECT_EQ(c.kv_heads(), 1) << c.name();
    EXPECT_EQ(c.name().find("Hkv"), std::string::npos) << c.name();
  }
  EXPECT_EQ(error_of({"--decode-keys=1048577"}),
            "bench: --decode-keys expects an integer in [1, 1048576], got '1048577'");
  EXPECT_EQ(error_of({"--decode-queries=0"}), "bench: --decode-queries expects an integer in [1, 4096], got '0'");
}

}  // namespace
}  // namespace ped::bench
