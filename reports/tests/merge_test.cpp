// report merge, end to end through the `report` executable: the shards of a synthetic sweep (bench
// JSON with the manifest in its context, verify CSV with its manifest file, written here as bench
// and verify write them) merge into what one unsharded run gives; every refusal names what it
// refuses, exits 2 and writes nothing.
#include "core/errors.hpp"
#include "core/schemas.hpp"
#include "core/shard.hpp"
#include "reports/merge.hpp"
#include "tests/test_files.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace ped::reports {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::file_count;
using testing::read_text;
using testing::run_report;
using testing::write_text;

// The bench sweep: attention benchmarks, one non-attention benchmark (4) and one that reports an
// error without repetitions (5), as bench registers them.
const std::vector<std::string> bench_names = {
    "attention/flash/forward/float/causal/B:1/H:2/N:64/d:16/T:1",
    "attention/flash/forward/float/causal/B:1/H:2/N:128/d:16/T:1",
    "attention/naive/forward/float/causal/B:1/H:2/N:64/d:16/T:1",
    "attention/naive/forward/float/causal/B:1/H:2/N:128/d:16/T:1",
    "layers/layernorm/N:64",
    "attention/blocked/forward/float/causal/B:1/H:2/N:4096/d:16/T:1",
    "attention/blocked/backward/float/none/B:1/H:2/N:64/d:16/T:1"};
const std::vector<std::uint64_t> bench_costs = {5, 9, 3, 7, 1, 4, 2};
constexpr std::size_t errored_case = 5;

struct VerifyCase {
  std::string op, variant, shape, mask;
  std::uint64_t seed;
  std::string key() const { return schema::verify_case_key(op, variant, shape, mask, seed); }
};
const std::vector<VerifyCase> verify_cases = {{"sdpa", "flash", "B=1 H=2 N=8 d=4", "causal", 1},
                                              {"sdpa", "naive", "B=1 H=2 N=8 d=4", "causal", 1},
                                              {"sdpa", "blocked", "B=1 H=2 N=8 d=4", "none", 2},
                                              {"layernorm", "", "B=2 N=8 C=16", "none", 1},
                                              {"sdpa", "flash", "B=1 H=2 N=16 d=4", "causal", 3}};
const std::vector<std::uint64_t> verify_costs = {4, 4, 2, 1, 8};

std::vector<std::string> verify_keys() {
  std::vector<std::string> keys;
  for (const VerifyCase& c : verify_cases) keys.push_back(c.key());
  return keys;
}

ShardManifest manifest_of(const std::string& tool, ShardSpec spec) {
  ShardManifest m = tool == "bench" ? make_shard_manifest(bench_names, bench_costs, spec)
                                    : make_shard_manifest(verify_keys(), verify_costs, spec);
  m.tool = tool;
  m.git_rev = "abc1234";
  m.profile = tool == "bench" ? "quick" : "default";
  m.settings = "--repetitions 3";
  m.host_kind = "Test CPU @ 2.0GHz x 2 CPUs";
  return m;
}

// A shard's bench JSON, as bench writes it: the manifest in the context, the shard's k-th benchmark
// family_index k. `names` maps a global case to its benchmark name.
std::string bench_json(const ShardManifest& m, const std::string& host = "node1",
                       const std::vector<std::string>& names = bench_names) {
  std::string context = concat("    \"host_name\": \"", host, "\",\n    \"date\": \"2026-12-06T10:00:00+00:00\",\n",
                               "    \"num_cpus\": 2,\n    \"library_build_type\": \"release\",\n",
                               "    \"allocator\": \"tuned\"");
  for (const auto& [key, value] : manifest_fields(m)) context += concat(",\n    \"", key, "\": \"", value, "\"");
  std::string entries;
  const auto add = [&](const std::string& entry) { entries += (entries.empty() ? "    " : ",\n    ") + entry; };
  for (std::size_t k = 0; k < m.case_indices.size(); ++k) {
    const std::size_t c = m.case_indices[k];
    const std::string& name = names[c];
    const std::string head = concat("\"family_index\": ", k, ", \"per_family_instance_index\": 0, \"run_name\": \"", name, "\"");
    if (c == errored_case) {
      add(concat("{\"name\": \"", name, "\", ", head,
                 ", \"run_type\": \"iteration\", \"error_occurred\": true, \"error_message\": \"over the memory budget\"}"));
      continue;
    }
    for (int r = 0; r < 3; ++r) {
      const double ns = (100.0 + 37.0 * static_cast<double>(c)) * (1.0 + 0.01 * r) * 1000.0;
      add(concat("{\"name\": \"", name, "\", ", head, ", \"run_type\": \"iteration\", \"repetitions\": 3, ",
                 "\"repetition_index\": ", r, ", \"threads\": 1, \"iterations\": 10, \"real_time\": ", ns,
                 ", \"cpu_time\": ", ns, ", \"time_unit\": \"ns\", \"gemm_gflops\": ", 50 + c,
                 ", \"phase_score_gemm\": 0.", 5 + r, ", \"phase_other\": 0.", 5 - r, "}"));
    }
    for (const char* aggregate : {"mean", "median"}) {
      add(concat("{\"name\": \"", name, "_", aggregate, "\", ", head, ", \"run_type\": \"aggregate\", ",
                 "\"aggregate_name\": \"", aggregate, "\", \"repetitions\": 3, \"threads\": 1, \"iterations\": 3, ",
                 "\"real_time\": 1000, \"cpu_time\": 1000, \"time_unit\": \"ns\"}"));
    }
  }
  return concat("{\n  \"context\": {\n", context, "\n  },\n  \"benchmarks\": [\n", entries, "\n  ]\n}\n");
}

// A shard's verify CSV, as verify writes it: each case's rows together, in the manifest's order.
// One row of each case with seed 3 fails, with a detail that needs quoting.
std::string verify_csv(const ShardManifest& m, const std::vector<VerifyCase>& cases = verify_cases) {
  std::string csv = schema::header_line(schema::verify_columns);
  for (std::size_t c : m.case_indices) {
    const VerifyCase& v = cases[c];
    const std::string head = concat(v.op, ",", v.variant, ",float,", v.shape, ",", v.mask, ",");
    csv += concat(head, "libtorch,y,1e-07,2e-06,3e-07,1e-05,true,", v.seed, ",\n");
    if (v.seed == 3) {
      csv += concat(head, "finite_difference,dq,0.5,0.25,0.125,1e-05,false,", v.seed, ",\"norm_rel_err 0.125 > 1e-05, failed\"\n");
    } else {
      csv += concat(head, "finite_difference,dq,1e-06,2e-05,3e-06,1e-04,true,", v.seed, ",\n");
    }
  }
  return csv;
}

class ReportMerge : public ::testing::Test {
 protected:
  TempDirectory scratch_{"ped-report-merge-test-"};
  fs::path scratch() const { return scratch_.path(); }
  fs::path out() const { return scratch() / "merged"; }

  // Shard directories s0..s{N-1} of both sweeps (bench and/or verify), as the sharded scripts fill them.
  std::vector<fs::path> write_shards(std::size_t count, bool bench = true, bool verify = true,
                                     const std::string& prefix = "s") {
    std::vector<fs::path> dirs;
    for (std::size_t i = 0; i < count; ++i) {
      const fs::path dir = scratch() / concat(prefix, i);
      fs::create_directories(dir);
      if (bench) write_text(dir / merge_bench_json, bench_json(manifest_of("bench", {i, count})));
      if (verify) write_verify(dir, manifest_of("verify", {i, count}));
      dirs.push_back(dir);
    }
    return dirs;
  }
  static void write_verify(const fs::path& dir, const ShardManifest& m, const std::vector<VerifyCase>& cases = verify_cases) {
    write_text(dir / merge_verify_csv, verify_csv(m, cases));
    write_text(shard_manifest_path(dir / merge_verify_csv), manifest_json(m));
  }

  CommandResult merge(const std::vector<fs::path>& dirs, const fs::path& out_dir) {
    std::vector<std::string> args{"merge", "--out", out_dir.string()};
    for (const fs::path& dir : dirs) args.push_back(dir.string());
    return run_report(scratch(), args);
  }

  // The merge is refused (exit 2) with a message holding every one of `parts`, and nothing written.
  void expect_refused(const std::vector<fs::path>& dirs, const std::vector<std::string>& parts) {
    const CommandResult r = merge(dirs, out());
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_EQ(r.err.rfind("report: bad input: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    for (const std::string& part : parts) EXPECT_NE(r.err.find(part), std::string::npos) << "no '" << part << "' in " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_TRUE(!fs::exists(out()) || file_count(out()) == 0) << "merge wrote into " << out();
  }
};

TEST_F(ReportMerge, ShardsMergeIntoWhatOneUnshardedRunGives) {
  const std::vector<fs::path> dirs = write_shards(3);
  // The shards given in any order.
  const CommandResult r = merge({dirs[2], dirs[0], dirs[1]}, out());
  // One verify check failed (case 4's): exit 1, once every file is written.
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("report merge: 1 of 10 verify checks failed (verify.csv, column passed)"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("bench.json (7 cases, 31 entries, from 3 shards)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bench.csv (5 benchmarks, from 3 shards)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bench.samples.csv (15 samples, from 3 shards)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bench.phases.csv (10 phase fractions, from 3 shards)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("verify.csv (5 cases, 10 rows, from 3 shards)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("verify.shard.json (5 cases, shard 0/1, from 3 shards)"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("report merge: skipped " + bench_names[errored_case] + ": over the memory budget"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("left out 3 runs of non-attention benchmarks"), std::string::npos) << r.err;

  // The unsharded run (shard 0/1) of the same sweep, through report convert.
  const ShardManifest whole = manifest_of("bench", {0, 1});
  write_text(scratch() / "whole.json", bench_json(whole));
  const CommandResult c = run_report(scratch(), {"convert", "--json", (scratch() / "whole.json").string(), "--out",
                                                 (scratch() / "whole.csv").string()});
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  EXPECT_EQ(read_text(out() / "bench.csv"), read_text(scratch() / "whole.csv"));
  EXPECT_EQ(read_text(out() / "bench.samples.csv"), read_text(scratch() / "whole.samples.csv"));
  EXPECT_EQ(read_text(out() / "bench.phases.csv"), read_text(scratch() / "whole.phases.csv"));

  // The merged JSON: the unsharded run's entries (family_index = global case), its manifest, N shards.
  const auto merged = nlohmann::json::parse(read_text(out() / "bench.json"));
  const auto unsharded = nlohmann::json::parse(bench_json(whole));
  EXPECT_EQ(merged["benchmarks"], unsharded["benchmarks"]);
  for (const auto& [key, value] : manifest_fields(whole)) EXPECT_EQ(merged["context"][key], value) << key;
  EXPECT_EQ(merged["context"]["host_name"], "node1");
  EXPECT_EQ(merged["context"]["shards"], "3");
  EXPECT_EQ(merged["context"]["num_cpus"], 2);

  // verify: the unsharded CSV, line for line, and the complete sweep's manifest.
  EXPECT_EQ(read_text(out() / "verify.csv"), verify_csv(manifest_of("verify", {0, 1})));
  EXPECT_EQ(read_manifest_json(out() / "verify.shard.json"), manifest_of("verify", {0, 1}));
}

TEST_F(ReportMerge, EachRowKeepsItsShardsHostAndTheContextNamesEveryHost) {
  const std::vector<fs::path> dirs = write_shards(2, true, false);
  write_text(dirs[1] / merge_bench_json, bench_json(manifest_of("bench", {1, 2}), "node2"));
  const CommandResult r = merge(dirs, out());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_FALSE(fs::exists(out() / "verify.csv"));
  const std::vector<std::size_t> second = manifest_of("bench", {1, 2}).case_indices;
  std::size_t checked = 0;
  for (const BenchmarkRow& row : read_benchmark_csv(out() / "bench.csv")) {
    const auto global = std::find_if(bench_names.begin(), bench_names.end(),
                                     [&](const std::string& name) { return name == benchmark_name(row.key); });
    ASSERT_NE(global, bench_names.end()) << benchmark_name(row.key);
    const bool in_second =
        std::find(second.begin(), second.end(), static_cast<std::size_t>(global - bench_names.begin())) != second.end();
    EXPECT_EQ(row.host, in_second ? "node2" : "node1") << benchmark_name(row.key);
    EXPECT_EQ(row.git_rev, "abc1234");
    ++checked;
  }
  EXPECT_EQ(checked, 5u);
  const auto merged = nlohmann::json::parse(read_text(out() / "bench.json"));
  EXPECT_EQ(merged["context"]["host_name"], "node1,node2");
}

TEST_F(ReportMerge, MergedOutputMergesAgainAsOneShard) {
  const std::vector<fs::path> dirs = write_shards(3);
  ASSERT_EQ(merge(dirs, out()).exit_code, 1);
  const fs::path again = scratch() / "again";
  const CommandResult r = merge({out()}, again);
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("from 1 shards"), std::string::npos) << r.out;
  for (const char* file : {"bench.csv", "bench.samples.csv", "bench.phases.csv", "verify.csv", "verify.shard.json"}) {
    EXPECT_EQ(read_text(again / file), read_text(out() / file)) << file;
  }
  auto first = nlohmann::json::parse(read_text(out() / "bench.json"));
  auto second = nlohmann::json::parse(read_text(again / "bench.json"));
  EXPECT_EQ(second["context"]["shards"], "1");
  first["context"].erase("shards");
  second["context"].erase("shards");
  EXPECT_EQ(first, second);
}

TEST_F(ReportMerge, VerifyShardsMayComeFromDifferentHostKinds) {
  const std::vector<fs::path> dirs = write_shards(2, false, true);
  ShardManifest other = manifest_of("verify", {1, 2});
  other.host_kind = "Other CPU x 64 CPUs";
  write_verify(dirs[1], other);
  const CommandResult r = merge(dirs, out());
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(read_manifest_json(out() / "verify.shard.json").host_kind, "Test CPU @ 2.0GHz x 2 CPUs; Other CPU x 64 CPUs");
  EXPECT_EQ(read_text(out() / "verify.csv"), verify_csv(manifest_of("verify", {0, 1})));
}

TEST_F(ReportMerge, MoreShardsThanCasesLeaveEmptyShards) {
  const std::vector<fs::path> dirs = write_shards(6, false, true);
  const CommandResult r = merge(dirs, out());
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(read_text(out() / "verify.csv"), verify_csv(manifest_of("verify", {0, 1})));
}

TEST_F(ReportMerge, ExitsZeroWhenEveryMergedVerifyCheckPassed) {
  // The sweep without its failing check (case 4 with seed 4 instead of 3).
  std::vector<VerifyCase> cases = verify_cases;
  cases[4].seed = 4;
  std::vector<fs::path> dirs = write_shards(2, false, true);
  for (std::size_t i = 0; i < 2; ++i) write_verify(dirs[i], manifest_of("verify", {i, 2}), cases);
  const CommandResult r = merge(dirs, out());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find("failed"), std::string::npos) << r.err;
  EXPECT_EQ(read_text(out() / "verify.csv"), verify_csv(manifest_of("verify", {0, 1}), cases));
}

TEST_F(ReportMerge, RefusesAMissingFileOrOneThatIsNoShardOutput) {
  std::vector<fs::path> dirs = write_shards(2);
  fs::remove(dirs[1] / "verify.shard.json");
  expect_refused(dirs, {(dirs[1] / "verify.shard.json").string(), "cannot open the shard manifest"});

  dirs = write_shards(2, true, false, "b");
  write_text(dirs[0] / merge_bench_json, "{\"context\": {\"host_name\": \"node1\"}, \"benchmarks\": []}");
  expect_refused(dirs, {(dirs[0] / merge_bench_json).string(), "no shard field 'tool'"});
  write_text(dirs[0] / merge_bench_json, "");
  expect_refused(dirs, {(dirs[0] / merge_bench_json).string(), "empty file"});

  // A verify manifest where bench's is expected.
  write_text(dirs[0] / merge_bench_json, bench_json(manifest_of("verify", {0, 2})));
  expect_refused(dirs, {(dirs[0] / merge_bench_json).string(), "tool 'verify': expected bench"});

  const fs::path empty = scratch() / "empty";
  fs::create_directories(empty);
  expect_refused({dirs[1], empty}, {empty.string(), "holds neither bench.json nor verify.csv"});
  expect_refused({dirs[1], scratch() / "nowhere"}, {(scratch() / "nowhere").string(), "not a directory"});
}

TEST_F(ReportMerge, RefusesDirectoriesWithDifferentOutputs) {
  const std::vector<fs::path> dirs = write_shards(2);
  fs::remove(dirs[1] / merge_bench_json);
  expect_refused(dirs, {"shard directories with different outputs", dirs[0].string() + " holds bench.json and verify.csv",
                        dirs[1].string() + " holds verify.csv only"});
}

TEST_F(ReportMerge, RefusesShardsOfDifferentRevisions) {
  const std::vector<fs::path> dirs = write_shards(2);
  ShardManifest m = manifest_of("bench", {1, 2});
  m.git_rev = "def5678";
  write_text(dirs[1] / merge_bench_json, bench_json(m));
  expect_refused(dirs, {"shards of different revisions: " + dirs[0].string() + " (rev abc1234) and " + dirs[1].string() +
                            " (rev def5678)"});
  // The same for verify.
  write_text(dirs[1] / merge_bench_json, bench_json(manifest_of("bench", {1, 2})));
  m = manifest_of("verify", {1, 2});
  m.git_rev = "def5678";
  write_verify(dirs[1], m);
  expect_refused(dirs, {"shards of different revisions: " + dirs[0].string() + " (rev abc1234) and " + dirs[1].string() +
                            " (rev def5678)", "verify.csv"});
}

TEST_F(ReportMerge, RefusesShardsOfDifferentProfilesOrSettings) {
  const std::vector<fs::path> dirs = write_shards(2, true, false);
  ShardManifest m = manifest_of("bench", {1, 2});
  m.profile = "full";
  write_text(dirs[1] / merge_bench_json, bench_json(m));
  expect_refused(dirs, {"shards of different profiles", "(profile quick)", dirs[1].string() + " (profile full)"});
  m = manifest_of("bench", {1, 2});
  m.settings = "--repetitions 9";
  write_text(dirs[1] / merge_bench_json, bench_json(m));
  expect_refused(dirs, {"shards of different settings", "'--repetitions 3'", "'--repetitions 9'"});
}

TEST_F(ReportMerge, RefusesShardsOfDifferentCaseLists) {
  std::vector<fs::path> dirs = write_shards(2, true, false);
  ShardManifest m = manifest_of("bench", {1, 2});
  m.case_list_digest = "0123456789abcdef";
  write_text(dirs[1] / merge_bench_json, bench_json(m));
  expect_refused(dirs, {"shards of different case lists", "digest 0123456789abcdef"});
  // Shard 1 of a cut into 3: another split of the same list.
  write_text(dirs[1] / merge_bench_json, bench_json(manifest_of("bench", {1, 3})));
  expect_refused(dirs, {"shards of different case lists", "(shard 1/3)", "into 2 and 3 shards"});
}

TEST_F(ReportMerge, RefusesADuplicatedShard) {
  const std::vector<fs::path> dirs = write_shards(3, true, false);
  expect_refused({dirs[0], dirs[1], dirs[1], dirs[2]}, {"shard 1/3 given twice (duplicated shard)", dirs[1].string()});
  // Another directory holding shard 1 again.
  const fs::path copy = scratch() / "copy";
  fs::create_directories(copy);
  fs::copy_file(dirs[1] / merge_bench_json, copy / merge_bench_json);
  expect_refused({dirs[0], dirs[1], copy, dirs[2]}, {"shard 1/3 given twice", dirs[1].string() + " and " + copy.string()});
}

TEST_F(ReportMerge, RefusesAMissingShard) {
  const std::vector<fs::path> dirs = write_shards(4, false, true);
  expect_refused({dirs[0], dirs[1], dirs[3]},
                 {"shard 2/4 missing", "verify.csv", "shard 0/4 (" + dirs[0].string() + ")", "shard 3/4"});
  expect_refused({dirs[3]}, {"shard 0/4 missing", "3 shards missing in all (0, 1, 2)"});
}

TEST_F(ReportMerge, RefusesOverlappingShards) {
  // Shard 1 also claims (and ran) shard 0's first case.
  std::vector<fs::path> dirs = write_shards(2, true, false);
  ShardManifest m = manifest_of("bench", {1, 2});
  const std::size_t taken = manifest_of("bench", {0, 2}).case_indices.front();
  m.case_indices.push_back(taken);
  write_text(dirs[1] / merge_bench_json, bench_json(m));
  expect_refused(dirs, {concat("overlapping shards: case ", taken, " is in shard 0/2"), "and in shard 1/2"});

  // The same benchmark under two case indices: shard 1 ran shard 0's benchmark in place of its own.
  std::vector<std::string> names = bench_names;
  const ShardManifest first = manifest_of("bench", {0, 2});
  const ShardManifest second = manifest_of("bench", {1, 2});
  const std::size_t own = *std::find_if(second.case_indices.begin(), second.case_indices.end(),
                                        [](std::size_t c) { return c != errored_case && c != 4; });
  const std::size_t other = *std::find_if(first.case_indices.begin(), first.case_indices.end(),
                                          [](std::size_t c) { return c != errored_case && c != 4; });
  names[own] = bench_names[other];
  write_text(dirs[1] / merge_bench_json, bench_json(second, "node1", names));
  expect_refused(dirs, {"overlapping shards: benchmark '" + bench_names[other] + "'", concat("(case ", other, ")"),
                        concat("(case ", own, ")")});

  // verify: shard 1 ran one of shard 0's problems in place of its own.
  dirs = write_shards(2, false, true, "v");
  std::vector<VerifyCase> cases = verify_cases;
  const ShardManifest vfirst = manifest_of("verify", {0, 2});
  const ShardManifest vsecond = manifest_of("verify", {1, 2});
  cases[vsecond.case_indices.front()] = verify_cases[vfirst.case_indices.front()];
  write_verify(dirs[1], vsecond, cases);
  expect_refused(dirs, {"overlapping shards: verify case '" + verify_cases[vfirst.case_indices.front()].key() + "'"});
}

TEST_F(ReportMerge, RefusesOutputsThatDoNotMatchTheirManifest) {
  // bench: the manifest lists one case fewer than the shard ran: a family_index without a case.
  std::vector<fs::path> dirs = write_shards(2, true, false);
  std::string text = bench_json(manifest_of("bench", {1, 2}));
  ShardManifest m = manifest_of("bench", {1, 2});
  m.case_indices.pop_back();
  const auto full = manifest_fields(manifest_of("bench", {1, 2}));
  const auto cut = manifest_fields(m);
  const std::string from = concat("\"shard_cases\": \"", full.back().second, "\"");
  text.replace(text.find(from), from.size(), concat("\"shard_cases\": \"", cut.back().second, "\""));
  write_text(dirs[1] / merge_bench_json, text);
  expect_refused(dirs, {(dirs[1] / merge_bench_json).string(), concat("family_index ", m.case_indices.size()),
                        concat("lists ", m.case_indices.size(), " cases"), "do not match the manifest"});

  // bench: a case of the manifest without runs (cut short).
  write_text(dirs[1] / merge_bench_json, bench_json(manifest_of("bench", {1, 2})));
  m = manifest_of("bench", {1, 2});
  const std::size_t dropped = m.case_indices.back();
  text = bench_json(m);
  // The runs of the last family go: cut the entries list before its first entry.
  const std::size_t last = text.find(concat("\"family_index\": ", m.case_indices.size() - 1, ","));
  const std::size_t entry_start = text.rfind(",\n    {", last);
  text = text.substr(0, entry_start) + "\n  ]\n}\n";
  write_text(dirs[1] / merge_bench_json, text);
  expect_refused(dirs, {concat("ran ", m.case_indices.size() - 1, " benchmarks"), concat("no runs of case ", dropped)});

  // verify: the CSV holds one case fewer than its manifest.
  dirs = write_shards(2, false, true, "v");
  ShardManifest v = manifest_of("verify", {0, 2});
  ShardManifest shorter = v;
  shorter.case_indices.pop_back();
  write_text(dirs[0] / merge_verify_csv, verify_csv(shorter));
  expect_refused(dirs, {(dirs[0] / merge_verify_csv).string(), concat("holds ", shorter.case_indices.size(), " cases"),
                        concat("lists ", v.case_indices.size())});

  // verify: a case's rows apart.
  std::string csv = verify_csv(v);
  const std::string first_row = csv.substr(csv.find('\n') + 1, csv.find('\n', csv.find('\n') + 1) - csv.find('\n'));
  write_text(dirs[0] / merge_verify_csv, csv + first_row);
  expect_refused(dirs, {"are not contiguous", verify_cases[v.case_indices.front()].key()});
}

TEST_F(ReportMerge, RefusesShardsThatLeaveCasesOut) {
  // Every shard consistent with its own manifest, but case 3 was in none (a filtered run).
  const std::vector<fs::path> dirs = write_shards(2, true, false);
  for (std::size_t i = 0; i < 2; ++i) {
    ShardManifest m = manifest_of("bench", {i, 2});
    std::erase(m.case_indices, std::size_t{3});
    write_text(dirs[i] / merge_bench_json, bench_json(m));
  }
  expect_refused(dirs, {"the shards' bench.json cover 6 of 7 cases: 1 missing (case 3)", "--benchmark_filter"});
}

TEST_F(ReportMerge, RefusesBenchTimingsFromDifferentHostKinds) {
  const std::vector<fs::path> dirs = write_shards(2, true, false);
  ShardManifest m = manifest_of("bench", {1, 2});
  m.host_kind = "Other CPU x 64 CPUs";
  write_text(dirs[1] / merge_bench_json, bench_json(m, "node2"));
  expect_refused(dirs, {"timings from different kinds of machine: shard 0/2 (" + dirs[0].string() +
                            ") ran on 'Test CPU @ 2.0GHz x 2 CPUs', shard 1/2 (" + dirs[1].string() +
                            ") on 'Other CPU x 64 CPUs'",
                        "one curve through both"});
}

TEST_F(ReportMerge, RefusesToWriteIntoAShardDirectory) {
  const std::vector<fs::path> dirs = write_shards(2);
  const std::string before = read_text(dirs[0] / merge_bench_json);
  const CommandResult r = merge(dirs, dirs[0] / ".");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("is the shard directory " + dirs[0].string()), std::string::npos) << r.err;
  EXPECT_EQ(read_text(dirs[0] / merge_bench_json), before);
  EXPECT_EQ(file_count(dirs[0]), 3u);
}

TEST_F(ReportMerge, AnExistingEmptyOutputDirectoryStaysEmptyOnARefusal) {
  const std::vector<fs::path> dirs = write_shards(3, true, false);
  fs::create_directories(out());
  expect_refused({dirs[0], dirs[2]}, {"shard 1/3 missing"});
  EXPECT_EQ(file_count(out()), 0u);
}

TEST_F(ReportMerge, NeedsAShardDirectoryAndAnOutputDirectory) {
  CommandResult r = run_report(scratch(), {"merge", "--out", out().string()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  r = run_report(scratch(), {"merge", scratch().string()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_FALSE(fs::exists(out()));
}

}  // namespace
}  // namespace ped::reports
