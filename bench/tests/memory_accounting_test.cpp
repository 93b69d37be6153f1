// The counting allocation functions: blocks from new, malloc, calloc, realloc, posix_memalign and
// aligned_alloc inside a region raise its peak by at least their size; freeing them returns the
// count to where it was.
#include "bench/memory_accounting.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <memory>
#include <vector>

namespace ped::bench::memory {
namespace {

constexpr std::size_t kBlock = std::size_t{3} << 20;  // 3 MiB

TEST(MemoryAccounting, IsActiveInThisExecutable) { EXPECT_TRUE(accounting_active()); }

TEST(MemoryAccounting, NewMallocAndPosixMemalignAreCounted) {
  const std::int64_t baseline = current_bytes();
  const Region region;
  char* by_new = new char[kBlock];
  void* by_malloc = std::malloc(kBlock);
  void* by_posix_memalign = nullptr;
  ASSERT_EQ(posix_memalign(&by_posix_memalign, 64, kBlock), 0);
  void* by_aligned_alloc = std::aligned_alloc(4096, kBlock);
  void* by_calloc = std::calloc(kBlock, 1);
  ASSERT_NE(by_malloc, nullptr);
  ASSERT_NE(by_aligned_alloc, nullptr);
  ASSERT_NE(by_calloc, nullptr);
  by_new[0] = 1;  // keep the compiler from eliding the pair
  EXPECT_GE(current_bytes() - baseline, static_cast<std::int64_t>(5 * kBlock));
  EXPECT_GE(region.peak_above_start(), static_cast<std::int64_t>(5 * kBlock));
  delete[] by_new;
  std::free(by_malloc);
  std::free(by_posix_memalign);
  std::free(by_aligned_alloc);
  std::free(by_calloc);
  EXPECT_EQ(current_bytes(), baseline);
  EXPECT_GE(region.peak_above_start(), static_cast<std::int64_t>(5 * kBlock));  // the peak stays
}

TEST(MemoryAccounting, ReallocAndVectorsReturnToBaseline) {
  const std::int64_t baseline = current_bytes();
  const Region region;
  void* block = std::malloc(1024);
  block = std::realloc(block, kBlock);
  ASSERT_NE(block, nullptr);
  EXPECT_GE(current_bytes() - baseline, static_cast<std::int64_t>(kBlock));
  std::free(block);
  {
    std::vector<double> v(kBlock / sizeof(double), 1.0);
    auto aligned = std::make_unique<std::array<float, 16>[]>(1);  // small, default alignment
    EXPECT_GE(current_bytes() - baseline, static_cast<std::int64_t>(kBlock));
  }
  EXPECT_EQ(current_bytes(), baseline);
  EXPECT_GE(region.peak_above_start(), static_cast<std::int64_t>(kBlock));
}

TEST(MemoryAccounting, ARegionStartsAtTheCurrentLevel) {
  std::vector<char> held(kBlock, 1);  // allocated before the region: not part of its peak
  const Region region;
  EXPECT_LT(region.peak_above_start(), 4096);
  std::vector<char> inside(kBlock / 3, 1);
  EXPECT_GE(region.peak_above_start(), static_cast<std::int64_t>(kBlock / 3));
  EXPECT_LT(region.peak_above_start(), static_cast<std::int64_t>(kBlock));
}

}  // namespace
}  // namespace ped::bench::memory
