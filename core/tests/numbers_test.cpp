// core/numbers.hpp: the whole text is the number, or nothing is.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "core/numbers.hpp"

namespace ped {
namespace {

TEST(Numbers, IntegersAreTheWholeText) {
  EXPECT_EQ(parse_whole_integer<int>("42"), 42);
  EXPECT_EQ(parse_whole_integer<int>("-7"), -7);
  EXPECT_EQ(parse_whole_integer<std::uint64_t>("18446744073709551615"), std::numeric_limits<std::uint64_t>::max());
  for (const char* bad : {"", " 1", "1 ", "+1", "1e3", "1.0", "12abc", "0x10", "nan", "inf"}) {
    EXPECT_FALSE(parse_whole_integer<int>(bad)) << "'" << bad << "'";
  }
  EXPECT_FALSE(parse_whole_integer<std::uint64_t>("-1"));  // never 2^64 - 1
  EXPECT_FALSE(parse_whole_integer<std::uint64_t>("18446744073709551616"));
  EXPECT_FALSE(parse_whole_integer<int>("2147483648"));
}

TEST(Numbers, IntegerRangesAreClosed) {
  EXPECT_EQ(parse_integer_in("1", 1, 1024), 1);
  EXPECT_EQ(parse_integer_in("1024", 1, 1024), 1024);
  EXPECT_FALSE(parse_integer_in("0", 1, 1024));
  EXPECT_FALSE(parse_integer_in("1025", 1, 1024));
}

TEST(Numbers, RealsAreFiniteAndTheWholeText) {
  EXPECT_EQ(parse_whole_finite("0.5"), 0.5);
  EXPECT_EQ(parse_whole_finite("1e3"), 1000.0);
  EXPECT_EQ(parse_whole_finite("-2.5e-3"), -2.5e-3);
  for (const char* bad : {"", " 1", "1 ", "+1", "nan", "inf", "-inf", "1e400", "1,5", "0x1p3", "2s"}) {
    EXPECT_FALSE(parse_whole_finite(bad)) << "'" << bad << "'";
  }
}

TEST(Numbers, RealRangesAreOpenOrClosedAsAsked) {
  EXPECT_FALSE(parse_real_in("0", 0.0, true, 1.0, false));
  EXPECT_EQ(parse_real_in("0", 0.0, false, 1.0, false), 0.0);
  EXPECT_EQ(parse_real_in("1", 0.0, true, 1.0, false), 1.0);
  EXPECT_FALSE(parse_real_in("1", 0.0, true, 1.0, true));
  EXPECT_FALSE(parse_real_in("1.0000001", 0.0, true, 1.0, false));
}

}  // namespace
}  // namespace ped
