// Heap accounting for the benchmarks: every allocation of the process, counted through the
// allocation functions themselves, so our kernels (operator new, std::vector) and LibTorch's c10
// CPU allocator (posix_memalign) are measured the same way.
//
// memory_accounting.cpp replaces malloc, calloc, realloc, reallocarray, free, posix_memalign,
// aligned_alloc, memalign, valloc, pvalloc (forwarding to glibc's __libc_* entry points) and every
// global operator new/delete (forwarding to those). The executable's definitions interpose on the
// shared libraries' calls, so LibTorch, OpenBLAS and libstdc++ allocate through them too. Sizes are
// the usable sizes glibc reports (malloc_usable_size), taken on allocation and on release, so no
// table of live blocks is needed and the count never drifts.
// In a sanitizer build (AddressSanitizer, ThreadSanitizer), whose runtime owns the allocation
// functions, it counts through the sanitizer's malloc and free hooks instead, with the requested
// sizes; everything below holds the same way, and the same tests run in both builds.
//
// Link memory_accounting.cpp into an executable directly (an object, not a static-library member
// that the linker might leave out): target ped_bench_memory_accounting.
#pragma once

#include <cstdint>

namespace ped::bench::memory {

// Bytes currently allocated through the counted functions (process-wide, all threads).
std::int64_t current_bytes();
// Number of allocations made so far (process-wide).
std::int64_t allocation_count();

// Peak tracking for one measured region: begin() remembers the current level and restarts the
// peak there; peak_above_start() is the highest level reached since, minus that start level.
// Regions are process-wide; one at a time (the benchmarks measure one call at a time).
class Region {
 public:
  Region();
  std::int64_t peak_above_start() const;
  std::int64_t start_bytes() const { return start_; }

 private:
  std::int64_t start_;
};

// True when the allocation functions of this process are the counting ones (the replacement
// object was linked in and interposed): a tiny allocation moves current_bytes().
bool accounting_active();

}  // namespace ped::bench::memory
