#include "core/errors.hpp"
#include "core/shard.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using ped::ShardSpec;

std::string error_of(const std::string& text) {
  try {
    ped::parse_shard("--shard", text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(Shard, ParsesIOfN) {
  EXPECT_EQ(ped::parse_shard("--shard", "0/1"), (ShardSpec{0, 1}));
  EXPECT_EQ(ped::parse_shard("--shard", "3/4"), (ShardSpec{3, 4}));
  EXPECT_EQ(ped::to_string(ShardSpec{2, 7}), "2/7");
}

TEST(Shard, RefusesBadSpecsNamingTheOptionAndTheValue) {
  EXPECT_EQ(error_of("3/3"), "--shard '3/3': shard index 3 out of range, expected 0 <= I < N = 3");
  EXPECT_EQ(error_of("0/0"), "--shard '0/0': shard count N = 0, expected at least 1");
  for (const char* bad : {"", "1", "/2", "1/", "-1/2", "1/-2", "a/2", "1/2/3", " 1/2", "1/2 ", "0/100001", "1.0/2"}) {
    const std::string e = error_of(bad);
    EXPECT_EQ(e.rfind("--shard '", 0), 0u) << bad << ": " << e;
  }
}

// Every case in exactly one shard, the same partition every call, no shard empty while cases remain.
TEST(Shard, AssignmentIsAPartitionBalancedByCost) {
  std::vector<std::uint64_t> costs;
  for (std::uint64_t i = 0; i < 200; ++i) costs.push_back((i * 7919) % 1000 + 1);
  for (std::size_t n : {1u, 2u, 3u, 7u, 200u, 250u}) {
    const std::vector<std::size_t> shard = ped::assign_shards(costs, n);
    EXPECT_EQ(shard, ped::assign_shards(costs, n));
    std::vector<std::size_t> seen;
    std::vector<std::uint64_t> total(n, 0);
    for (std::size_t s = 0; s < n; ++s) {
      const std::vector<std::size_t> mine = ped::shard_cases(costs, {s, n});
      EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end()));
      if (n <= costs.size()) {
        EXPECT_FALSE(mine.empty()) << s << "/" << n;
      }
      for (std::size_t i : mine) total[s] += costs[i];
      seen.insert(seen.end(), mine.begin(), mine.end());
    }
    std::sort(seen.begin(), seen.end());
    std::vector<std::size_t> all(costs.size());
    std::iota(all.begin(), all.end(), std::size_t{0});
    EXPECT_EQ(seen, all) << n;
    // Longest processing time first: no shard exceeds the mean by more than the largest cost.
    const std::uint64_t sum = std::accumulate(costs.begin(), costs.end(), std::uint64_t{0});
    const std::uint64_t largest = *std::max_element(costs.begin(), costs.end());
    for (std::uint64_t t : total) EXPECT_LE(t, sum / n + largest) << n;
  }
}

// By cost, not by count: one expensive case gets a shard to itself.
TEST(Shard, BalancesByCostNotByCount) {
  const std::vector<std::uint64_t> costs = {1, 1, 1, 1, 100, 1, 1, 1};
  const std::vector<std::size_t> shard = ped::assign_shards(costs, 2);
  for (std::size_t i = 0; i < costs.size(); ++i) EXPECT_EQ(shard[i], i == 4 ? 0u : 1u) << i;
  EXPECT_THROW(ped::assign_shards(costs, 0), std::invalid_argument);
  EXPECT_TRUE(ped::assign_shards({}, 3).empty());
}

TEST(Shard, DigestDependsOnKeysCostsAndOrder) {
  const std::vector<std::string> keys = {"a", "b"};
  const std::string d = ped::case_list_digest(keys, std::vector<std::uint64_t>{1, 2});
  EXPECT_EQ(d.size(), 16u);
  EXPECT_EQ(d, ped::case_list_digest(keys, std::vector<std::uint64_t>{1, 2}));
  EXPECT_NE(d, ped::case_list_digest(keys, std::vector<std::uint64_t>{1, 3}));
  EXPECT_NE(d, ped::case_list_digest(std::vector<std::string>{"b", "a"}, std::vector<std::uint64_t>{2, 1}));
  EXPECT_NE(d, ped::case_list_digest(std::vector<std::string>{"a\tb"}, std::vector<std::uint64_t>{1}));
}

TEST(ShardManifest, RoundTripsThroughFieldsAndJson) {
  const std::vector<std::string> keys = {"x", "y", "z"};
  const std::vector<std::uint64_t> costs = {5, 3, 4};
  ped::ShardManifest m = ped::make_shard_manifest(keys, costs, {1, 2});
  m.tool = "verify";
  m.git_rev = "abc";
  m.profile = "default";
  m.settings = "seeds=1,2";
  m.host_kind = "cpu x 2 CPUs";
  EXPECT_EQ(m.cases_total, 3u);
  EXPECT_EQ(m.case_indices, (std::vector<std::size_t>{1, 2}));  // 5 -> shard 0; 4 -> 1; 3 -> 1 (4 < 5)
  EXPECT_EQ(ped::parse_manifest_json(ped::manifest_json(m), "m.json"), m);
  ped::ShardManifest empty = m;
  empty.case_indices.clear();
  EXPECT_EQ(ped::parse_manifest_json(ped::manifest_json(empty), "m.json"), empty);
  EXPECT_EQ(ped::shard_manifest_path("out/verify.csv"), "out/verify.shard.json");
  EXPECT_EQ(ped::shard_manifest_path("out/v"), "out/v.shard.json");
}

std::string manifest_error(const std::string& json) {
  try {
    ped::parse_manifest_json(json, "m.json");
  } catch (const ped::InputError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(ShardManifest, RefusesMalformedManifestsNamingTheField) {
  const std::string good_tail = R"("git_rev": "r", "profile": "p", "settings": "s", "host_kind": "h", )";
  const auto with = [&](const std::string& shard, const std::string& total, const std::string& digest,
                        const std::string& cases) {
    return R"({"tool": "bench", )" + good_tail + R"("shard": ")" + shard + R"(", "cases_total": ")" + total +
           R"(", "case_list_digest": ")" + digest + R"(", "shard_cases": ")" + cases + R"("})";
  };
  const std::string digest = "0123456789abcdef";
  EXPECT_EQ(manifest_error(with("0/2", "3", digest, "0,2")), "accepted");
  EXPECT_NE(manifest_error(with("2/2", "3", digest, "0")).find("shard index 2 out of range"), std::string::npos);
  EXPECT_NE(manifest_error(with("0/2", "x", digest, "0")).find("cases_total"), std::string::npos);
  EXPECT_NE(manifest_error(with("0/2", "3", "0123", "0")).find("case_list_digest"), std::string::npos);
  EXPECT_NE(manifest_error(with("0/2", "3", digest, "0,3")).find("case index '3'"), std::string::npos);
  EXPECT_NE(manifest_error(with("0/2", "3", digest, "1,1")).find("given twice"), std::string::npos);
  EXPECT_NE(manifest_error(with("0/2", "3", digest, "1,")).find("case index ''"), std::string::npos);
  EXPECT_NE(manifest_error(R"({"tool": "bench"})").find("no shard field 'git_rev'"), std::string::npos);
  EXPECT_NE(manifest_error(R"({"tool": 3})").find("not a string"), std::string::npos);
  EXPECT_NE(manifest_error("[1]").find("JSON object"), std::string::npos);
  EXPECT_NE(manifest_error("{").find("not JSON"), std::string::npos);
  // The parser's message quotes the bytes it last read: shown as \xNN, the message stays one line.
  const std::string quoted = manifest_error(std::string("{\"t\x7fo\x01\0\0\0 ", 10));
  EXPECT_NE(quoted.find("not JSON"), std::string::npos);
  EXPECT_EQ(ped::first_control_character(quoted), "") << quoted;
  EXPECT_NE(manifest_error(R"({"tool": "train", )" + good_tail.substr(0, good_tail.size() - 2) + "}").find("tool"),
            std::string::npos);
}

TEST(Shard, ListCasesTableNamesEveryCaseItsShardAndTheTotals) {
  const std::vector<std::string> keys = {"a", "b", "c"};
  const std::vector<std::uint64_t> costs = {10, 20, 5};
  EXPECT_EQ(ped::list_cases_table(keys, costs, 2),
            "shard\tcost\tcase\n1\t10\ta\n0\t20\tb\n1\t5\tc\n# shard 0/2: 1 cases, cost 20\n# shard 1/2: 2 cases, cost 15\n");
}

}  // namespace
