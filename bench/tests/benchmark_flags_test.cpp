// Google Benchmark's numeric flags are checked before Google Benchmark reads them.
#include "bench/benchmark_flags.hpp"

#include <gtest/gtest.h>

namespace ped::bench {
namespace {

std::string error_of(std::vector<std::string> args) { return benchmark_flag_error(args, "bench"); }

TEST(BenchmarkFlags, GoodValuesAndOtherFlagsPass) {
  EXPECT_EQ(error_of({"--benchmark_repetitions=1", "--benchmark_min_time=0.5", "--benchmark_min_warmup_time=0",
                      "--benchmark_filter=flash", "--benchmark_format=json"}),
            "");
  EXPECT_EQ(error_of({"--benchmark_repetitions=100000", "--benchmark_min_time=86400"}), "");
  EXPECT_EQ(error_of({}), "");
}

TEST(BenchmarkFlags, BadValuesAreRefusedNamingTheFlagAndItsRange) {
  for (const char* value : {"-1", "0", "100001", "nan", "1.5", "abc", "", "99999999999", " 2"}) {
    EXPECT_EQ(error_of({std::string("--benchmark_repetitions=") + value}),
              std::string("bench: --benchmark_repetitions expects an integer in [1, 100000], got '") + value + "'");
  }
  for (const char* value : {"nan", "-nan", "inf", "-1", "0", "86401", "1e999", "abc", "", "0.1s"}) {
    EXPECT_EQ(error_of({std::string("--benchmark_min_time=") + value}),
              std::string("bench: --benchmark_min_time expects a finite number in (0, 86400], got '") + value + "'");
  }
  for (const char* value : {"nan", "inf", "-1", "86401", "x"}) {
    EXPECT_NE(error_of({std::string("--benchmark_min_warmup_time=") + value}).find("expects a finite number in [0, 86400]"),
              std::string::npos)
        << value;
  }
  EXPECT_NE(error_of({"--benchmark_repetitions"}).find("expects an integer"), std::string::npos);
}

TEST(BenchmarkFlags, AFlagGivenTwiceIsRefused) {
  EXPECT_EQ(error_of({"--benchmark_repetitions=2", "--benchmark_filter=x", "--benchmark_repetitions=3"}),
            "bench: --benchmark_repetitions is given more than once");
}

}  // namespace
}  // namespace ped::bench
