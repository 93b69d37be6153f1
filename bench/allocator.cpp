#include "bench/allocator.hpp"

#include <malloc.h>

#include <climits>
#include <cstdlib>
#include <stdexcept>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PED_SANITIZER_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PED_SANITIZER_ALLOCATOR 1
#endif
#endif

namespace ped::bench {
namespace {

// Under a sanitizer its own allocator serves malloc and its mallopt does nothing (returns 0).
#ifdef PED_SANITIZER_ALLOCATOR
constexpr bool kGlibcMalloc = false;
#else
constexpr bool kGlibcMalloc = true;
#endif

constexpr int kTunedThreshold = INT_MAX;          // mallopt's largest value (2^31 - 1 bytes)
constexpr int kDefaultMmapCeiling = 32 << 20;     // glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
constexpr int kDefaultTrimCeiling = 2 * kDefaultMmapCeiling;  // glibc's dynamic rule: trim = 2 x mmap threshold

void set(int parameter, const char* name, int value) {
  if (!kGlibcMalloc) return;
  if (mallopt(parameter, value) != 1) {
    throw std::runtime_error(std::string("apply_allocator: glibc refused mallopt(") + name + ", " +
                             std::to_string(value) + ")");
  }
}

void set_tuned() {
  set(M_MMAP_THRESHOLD, "M_MMAP_THRESHOLD", kTunedThreshold);
  set(M_TRIM_THRESHOLD, "M_TRIM_THRESHOLD", kTunedThreshold);
}

}  // namespace

const char* to_string(AllocatorSetting setting) {
  return setting == AllocatorSetting::tuned ? "tuned" : "default";
}

std::optional<AllocatorSetting> parse_allocator(const std::string& text) {
  if (text == "tuned") return AllocatorSetting::tuned;
  if (text == "default") return AllocatorSetting::glibc_default;
  return std::nullopt;
}

std::string describe(AllocatorSetting setting) {
  if (!kGlibcMalloc) return std::string(to_string(setting)) + ": no effect (a sanitizer's allocator serves malloc)";
  if (setting == AllocatorSetting::glibc_default) {
    return "default: glibc malloc untouched (dynamic mmap threshold: blocks >= 32 MiB mmapped and unmapped on free)";
  }
  return "tuned: glibc mallopt M_MMAP_THRESHOLD=" + std::to_string(kTunedThreshold) +
         " M_TRIM_THRESHOLD=" + std::to_string(kTunedThreshold) + " at start (freed memory stays in the process)";
}

void apply_allocator(AllocatorSetting setting) {
  if (setting == AllocatorSetting::tuned) set_tuned();
}

AllocatorSetting allocator_from_environment(const char* program) {
  const char* value = std::getenv("PED_BENCH_ALLOCATOR");
  if (value == nullptr || *value == '\0') return AllocatorSetting::tuned;
  const std::optional<AllocatorSetting> setting = parse_allocator(value);
  if (!setting) {
    throw std::invalid_argument(std::string(program) + ": PED_BENCH_ALLOCATOR (--allocator) expects tuned|default, got '" +
                                value + "'");
  }
  return *setting;
}

GlibcDefaultScope::GlibcDefaultScope() {
  set(M_MMAP_THRESHOLD, "M_MMAP_THRESHOLD", kDefaultMmapCeiling);
  set(M_TRIM_THRESHOLD, "M_TRIM_THRESHOLD", kDefaultTrimCeiling);
  if (kGlibcMalloc) malloc_trim(0);  // what the tuned setting kept goes back to the kernel, as a default process would have it
}

GlibcDefaultScope::~GlibcDefaultScope() {
  try {
    set_tuned();
  } catch (const std::runtime_error&) {
    // The same values were accepted at start; nothing sensible to do in a destructor otherwise.
  }
}

std::string describe_glibc_default_probe() {
  return "glibc's default at its dynamic ceiling: mallopt M_MMAP_THRESHOLD=" + std::to_string(kDefaultMmapCeiling) +
         " M_TRIM_THRESHOLD=" + std::to_string(kDefaultTrimCeiling) +
         " and malloc_trim(0) before the benchmark, the tuned values restored after";
}

}  // namespace ped::bench
