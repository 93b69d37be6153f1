// Counting of every heap allocation of the process. See memory_accounting.hpp.
//
// Ordinary builds replace the C and C++ allocation functions. Glibc documents replacing malloc
// ("Replacing malloc" in its manual): malloc, free, calloc and realloc must be replaced together; the
// aligned and legacy functions are replaced too so that no allocation escapes the count. Each
// replacement forwards to glibc's own implementation through the exported __libc_* entry points
// (posix_memalign and aligned_alloc through __libc_memalign) and adds or subtracts malloc_usable_size
// of the block. Nothing here may allocate: only relaxed atomics.
//
// Under AddressSanitizer (or ThreadSanitizer) the sanitizer owns malloc and operator new, and a second
// replacement would run before the sanitizer is initialised. There the count comes from the
// sanitizer's allocation hooks instead (__sanitizer_install_malloc_and_free_hooks): called by the
// sanitizer's allocator on every allocation with the requested size, and on every release, where
// __sanitizer_get_allocated_size gives the same size back. They are installed from the executable's
// preinit array, before any shared library's constructor allocates.
#include "bench/memory_accounting.hpp"

#include <malloc.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <new>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PED_COUNT_THROUGH_SANITIZER_HOOKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PED_COUNT_THROUGH_SANITIZER_HOOKS 1
#endif
#endif

#ifdef PED_COUNT_THROUGH_SANITIZER_HOOKS
// The sanitizer allocator interface (compiler-rt's sanitizer/allocator_interface.h, which GCC's
// libsanitizer exports but does not install as a header).
extern "C" {
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*, std::size_t),
                                              void (*free_hook)(const volatile void*));
std::size_t __sanitizer_get_allocated_size(const volatile void* block);
}
#endif

namespace {

std::atomic<std::int64_t> g_current{0};  // bytes live now
std::atomic<std::int64_t> g_peak{0};     // highest g_current since the last Region began
std::atomic<std::int64_t> g_count{0};    // allocations made

void raise_peak(std::int64_t level) {
  std::int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (level > peak && !g_peak.compare_exchange_weak(peak, level, std::memory_order_relaxed)) {
  }
}

void add_block(std::int64_t bytes) {
  g_count.fetch_add(1, std::memory_order_relaxed);
  raise_peak(g_current.fetch_add(bytes, std::memory_order_relaxed) + bytes);
}

void remove_block(std::int64_t bytes) { g_current.fetch_sub(bytes, std::memory_order_relaxed); }

}  // namespace

#ifdef PED_COUNT_THROUGH_SANITIZER_HOOKS

namespace {

void on_allocation(const volatile void* block, std::size_t size) {
  if (block != nullptr) add_block(static_cast<std::int64_t>(size));
}

void on_release(const volatile void* block) {
  if (block != nullptr) remove_block(static_cast<std::int64_t>(__sanitizer_get_allocated_size(block)));
}

void install_hooks() { __sanitizer_install_malloc_and_free_hooks(on_allocation, on_release); }

// Runs before every constructor of the executable and of its shared libraries.
[[gnu::section(".preinit_array"), gnu::used]] void (*const g_install_hooks)() = install_hooks;

}  // namespace

#else  // the replacement allocation functions

extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* pointer, std::size_t size);
void __libc_free(void* pointer);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void* __libc_valloc(std::size_t size);
void* __libc_pvalloc(std::size_t size);
}

namespace {

void* counted(void* block) {
  if (block != nullptr) add_block(static_cast<std::int64_t>(malloc_usable_size(block)));
  return block;
}

void uncount(void* block) {
  if (block != nullptr) remove_block(static_cast<std::int64_t>(malloc_usable_size(block)));
}

bool power_of_two(std::size_t x) { return x != 0 && (x & (x - 1)) == 0; }

void* new_block(std::size_t size, std::size_t alignment) {
  if (size == 0) size = 1;
  for (;;) {
    void* block = alignment <= alignof(std::max_align_t) ? malloc(size) : aligned_alloc(alignment, size);
    if (block != nullptr) return block;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void* new_block_nothrow(std::size_t size, std::size_t alignment) noexcept {
  try {
    return new_block(size, alignment);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace

extern "C" {

void* malloc(std::size_t size) { return counted(__libc_malloc(size)); }

void* calloc(std::size_t count, std::size_t size) { return counted(__libc_calloc(count, size)); }

void* realloc(void* pointer, std::size_t size) {
  if (pointer == nullptr) return malloc(size);
  const auto old_bytes = static_cast<std::int64_t>(malloc_usable_size(pointer));
  void* block = __libc_realloc(pointer, size);
  if (block == nullptr) {
    if (size == 0) g_current.fetch_sub(old_bytes, std::memory_order_relaxed);  // glibc freed it
    return nullptr;  // otherwise failed: the old block is untouched
  }
  const auto new_bytes = static_cast<std::int64_t>(malloc_usable_size(block));
  g_count.fetch_add(1, std::memory_order_relaxed);
  raise_peak(g_current.fetch_add(new_bytes - old_bytes, std::memory_order_relaxed) + new_bytes - old_bytes);
  return block;
}

void* reallocarray(void* pointer, std::size_t count, std::size_t size) {
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(pointer, bytes);
}

void free(void* pointer) {
  uncount(pointer);
  __libc_free(pointer);
}

void* memalign(std::size_t alignment, std::size_t size) { return counted(__libc_memalign(alignment, size)); }

void* aligned_alloc(std::size_t alignment, std::size_t size) { return counted(__libc_memalign(alignment, size)); }

int posix_memalign(void** result, std::size_t alignment, std::size_t size) {
  if (!power_of_two(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
  void* block = counted(__libc_memalign(alignment, size));
  if (block == nullptr) return ENOMEM;
  *result = block;
  return 0;
}

void* valloc(std::size_t size) { return counted(__libc_valloc(size)); }

void* pvalloc(std::size_t size) { return counted(__libc_pvalloc(size)); }

}  // extern "C"

// Global operator new/delete: through the counting malloc/aligned_alloc/free above (counted once).
void* operator new(std::size_t size) { return new_block(size, 0); }
void* operator new[](std::size_t size) { return new_block(size, 0); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return new_block_nothrow(size, 0); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return new_block_nothrow(size, 0); }
void* operator new(std::size_t size, std::align_val_t alignment) {
  return new_block(size, static_cast<std::size_t>(alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment) {
  return new_block(size, static_cast<std::size_t>(alignment));
}
void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return new_block_nothrow(size, static_cast<std::size_t>(alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return new_block_nothrow(size, static_cast<std::size_t>(alignment));
}
void operator delete(void* pointer) noexcept { free(pointer); }
void operator delete[](void* pointer) noexcept { free(pointer); }
void operator delete(void* pointer, std::size_t) noexcept { free(pointer); }
void operator delete[](void* pointer, std::size_t) noexcept { free(pointer); }
void operator delete(void* pointer, const std::nothrow_t&) noexcept { free(pointer); }
void operator delete[](void* pointer, const std::nothrow_t&) noexcept { free(pointer); }
void operator delete(void* pointer, std::align_val_t) noexcept { free(pointer); }
void operator delete[](void* pointer, std::align_val_t) noexcept { free(pointer); }
void operator delete(void* pointer, std::size_t, std::align_val_t) noexcept { free(pointer); }
void operator delete[](void* pointer, std::size_t, std::align_val_t) noexcept { free(pointer); }
void operator delete(void* pointer, std::align_val_t, const std::nothrow_t&) noexcept { free(pointer); }
void operator delete[](void* pointer, std::align_val_t, const std::nothrow_t&) noexcept { free(pointer); }

#endif  // PED_COUNT_THROUGH_SANITIZER_HOOKS

namespace ped::bench::memory {

std::int64_t current_bytes() { return g_current.load(std::memory_order_relaxed); }

std::int64_t allocation_count() { return g_count.load(std::memory_order_relaxed); }

Region::Region() : start_(g_current.load(std::memory_order_relaxed)) {
  g_peak.store(start_, std::memory_order_relaxed);
}

std::int64_t Region::peak_above_start() const {
  const std::int64_t peak = g_peak.load(std::memory_order_relaxed) - start_;
  return peak > 0 ? peak : 0;
}

bool accounting_active() {
  const std::int64_t before = allocation_count();
  void* volatile block = malloc(64);
  const bool moved = allocation_count() != before;
  free(block);
  return moved;
}

}  // namespace ped::bench::memory
