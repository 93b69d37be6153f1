// `report ab` end to end on a throw-away git repository whose `bench` is a stand-in that prints
// Google Benchmark JSON: revision 1 takes 1 ms per iteration, revision 2 takes 1.3 ms (an injected
// slowdown), both with 1% seeded-random jitter.
#include "core/errors.hpp"
#include "tests/test_files.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>

namespace ped::reports {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::write_text;

const char* const fake_cmake = R"(cmake_minimum_required(VERSION 3.25)
project(fake_bench LANGUAGES CXX)
add_executable(ped_bench bench.cpp)
set_target_properties(ped_bench PROPERTIES OUTPUT_NAME bench)
)";

// Writes what `bench --benchmark_out=FILE` would: two attention runs, one repetition each.
std::string fake_bench_source(double time_ms) {
  return concat(R"(#include <fstream>
#include <random>
#include <string>
int main(int argc, char** argv) {
  std::string out;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--benchmark_out=", 0) == 0) out = arg.substr(16);
  }
  std::random_device seed;
  std::mt19937 rng(seed());
  std::uniform_real_distribution<double> jitter(0.99, 1.01);
  std::ofstream json(out);
  json << "{\"context\": {\"host_name\": \"fake\", \"date\": \"today\"}, \"benchmarks\": [";
  const char* names[] = {"attention/flash/forward/float/causal/B:1/H:2/N:256/d:16/T:1",
                         "attention/naive/forward/float/causal/B:1/H:2/N:256/d:16/T:1"};
  for (int k = 0; k < 2; ++k) {
    json << (k ? "," : "") << "{\"name\": \"" << names[k] << "\", \"run_type\": \"iteration\", "
         << "\"repetition_index\": 0, \"threads\": 1, \"iterations\": 10, \"real_time\": " << )",
                time_ms, R"( * jitter(rng) << ", \"time_unit\": \"ms\"}";
  }
  json << "]}";
  return json ? 0 : 1;
}
)");
}

int run_shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ReportAb, BuildsTwoRevisionsRunsThemInterleavedAndGates) {
  if (run_shell("command -v git > /dev/null && command -v cmake > /dev/null") != 0) GTEST_SKIP() << "needs git, cmake";
  TempDirectory scratch("ped-ab-test-");
  const fs::path repo = scratch.path() / "repo";
  fs::create_directories(repo);
  const std::string git = "git -C '" + repo.string() + "' -c user.name=test -c user.email=test@example.com ";
  write_text(repo / "CMakeLists.txt", fake_cmake);
  write_text(repo / "bench.cpp", fake_bench_source(1.0));
  ASSERT_EQ(run_shell(git + "init -q && " + git + "add . && " + git + "commit -qm fast"), 0);
  write_text(repo / "bench.cpp", fake_bench_source(1.3));
  ASSERT_EQ(run_shell(git + "commit -qam slow"), 0);

  const fs::path builds = scratch.path() / "builds";
  const fs::path out = scratch.path() / "out";
  const std::string report = std::string("'") + PED_REPORT_EXECUTABLE + "' ab --repo '" + repo.string() +
                             "' --build-dir '" + builds.string() + "' --cmake-arg=-DCMAKE_BUILD_TYPE=Release";
  const std::string quiet = " > '" + (scratch.path() / "ab.out").string() + "' 2>&1";

  // HEAD~1 -> HEAD: 30% slower in every one of 9 interleaved pairs -> regression, exit 1.
  EXPECT_EQ(run_shell(report + " --rev-a HEAD~1 --rev-b HEAD --out '" + out.string() + "'" + quiet), 1)
      << read_text(scratch.path() / "ab.out");
  const std::string table = read_text(scratch.path() / "ab.out");
  EXPECT_NE(table.find("2 regressed"), std::string::npos) << table;
  const std::vector<Sample> a_samples = read_samples_csv(out / "A.samples.csv");
  EXPECT_EQ(a_samples.size(), 18u);  // 2 benchmarks x 9 runs
  EXPECT_EQ(read_benchmark_csv(out / "B.csv").size(), 2u);

  // A/A: the same revision on both sides -> no regression, exit 0 (source tree of A reused).
  EXPECT_EQ(run_shell(report + " --rev-a HEAD~1 --rev-b HEAD~1 --filter flash" + quiet), 0)
      << read_text(scratch.path() / "ab.out");
  EXPECT_NE(read_text(scratch.path() / "ab.out").find("reusing source tree"), std::string::npos);

  // An unknown revision is bad input, exit 2.
  EXPECT_EQ(run_shell(report + " --rev-a no-such-rev --rev-b HEAD" + quiet), 2);
  EXPECT_NE(read_text(scratch.path() / "ab.out").find("revision 'no-such-rev' is not a commit"), std::string::npos);

  // Without --build-dir the worktrees are removed afterwards: git lists only the main one. Two
  // repetitions gate nothing, which --allow-ungated accepts out loud.
  EXPECT_EQ(run_shell(std::string("'") + PED_REPORT_EXECUTABLE + "' ab --repo '" + repo.string() +
                      "' --rev-a HEAD --rev-b HEAD --repetitions 2 --allow-ungated --cmake-arg=-DCMAKE_BUILD_TYPE=Release" +
                      quiet),
            0)
      << read_text(scratch.path() / "ab.out");
  EXPECT_NE(read_text(scratch.path() / "ab.out").find("2 of 2 benchmarks were not gated"), std::string::npos)
      << read_text(scratch.path() / "ab.out");
  const fs::path worktrees = scratch.path() / "worktrees.txt";
  run_shell(git + "worktree list > '" + worktrees.string() + "'");
  const std::string listed = read_text(worktrees);
  // main, plus the kept trees of the --build-dir runs: a-<rev1>, b-<rev2>, b-<rev1>
  EXPECT_EQ(std::count(listed.begin(), listed.end(), '\n'), 4) << listed;
}

}  // namespace
}  // namespace ped::reports
