// The allocator setting: its names, the environment variable, and that the tuned setting and the
// probe's scope change how glibc serves a large block.
#include "bench/allocator.hpp"

#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PED_TEST_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PED_TEST_SANITIZER 1
#endif
#endif

namespace ped::bench {
namespace {

TEST(Allocator, NamesRoundTripAndOthersAreRefused) {
  for (AllocatorSetting s : {AllocatorSetting::tuned, AllocatorSetting::glibc_default}) {
    EXPECT_EQ(parse_allocator(to_string(s)), s);
  }
  EXPECT_STREQ(to_string(AllocatorSetting::glibc_default), "default");
  for (const char* bad : {"", "Tuned", "glibc", "jemalloc", "default "}) EXPECT_FALSE(parse_allocator(bad)) << bad;
}

TEST(Allocator, TheEnvironmentVariableIsCheckedAndDefaultsToTuned) {
  ::unsetenv("PED_BENCH_ALLOCATOR");
  EXPECT_EQ(allocator_from_environment("bench_gpt"), AllocatorSetting::tuned);
  ::setenv("PED_BENCH_ALLOCATOR", "default", 1);
  EXPECT_EQ(allocator_from_environment("bench_gpt"), AllocatorSetting::glibc_default);
  ::setenv("PED_BENCH_ALLOCATOR", "nope", 1);
  try {
    allocator_from_environment("bench_gpt");
    ADD_FAILURE() << "nope accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_EQ(std::string(error.what()),
              "bench_gpt: PED_BENCH_ALLOCATOR (--allocator) expects tuned|default, got 'nope'");
  }
  ::unsetenv("PED_BENCH_ALLOCATOR");
}

// Whether glibc served a fresh 64 MiB block with its own mmap (mallinfo2's hblks counts those).
bool mmapped_64_mib() {
  const std::size_t before = mallinfo2().hblks;
  void* volatile block = std::malloc(std::size_t{64} << 20);
  const bool mmapped = mallinfo2().hblks > before;
  std::free(block);
  return mmapped;
}

TEST(Allocator, TunedKeepsLargeBlocksInTheHeapAndTheProbeRestoresGlibcsDefault) {
#ifdef PED_TEST_SANITIZER
  GTEST_SKIP() << "a sanitizer's allocator serves malloc; mallopt has no effect";
#else
  apply_allocator(AllocatorSetting::tuned);
  EXPECT_FALSE(mmapped_64_mib());
  {
    const GlibcDefaultScope probe;
    EXPECT_TRUE(mmapped_64_mib());  // as glibc's default serves every block of 32 MiB or more
  }
  EXPECT_FALSE(mmapped_64_mib());  // tuned again
  EXPECT_NE(describe(AllocatorSetting::tuned).find("M_MMAP_THRESHOLD=2147483647"), std::string::npos);
#endif
}

}  // namespace
}  // namespace ped::bench
