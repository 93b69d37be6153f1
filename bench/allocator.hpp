// The heap allocator setting every contender of a benchmark run shares (bench and bench_gpt).
//
// Why it matters: on a virtual machine a fresh 64 MiB block costs 130-150 ms of first-touch page
// faults. LibTorch's math path allocates several B H N^2 float tensors per call; by default glibc
// serves every block of 32 MiB or more (the ceiling of its dynamic mmap threshold) with a fresh
// mmap and unmaps it on free, so each call pays those faults again and the benchmark measures the
// kernel's page-fault handler rather than attention (libtorch_sdpa at N = 4096 causal: ~2.4 s
// against ~0.4 s). A tuned deployment keeps freed memory in the process (PyTorch's CPU tuning guides
// use jemalloc or tcmalloc for it); bench does it with glibc's own knobs:
//
//   tuned    mallopt(M_MMAP_THRESHOLD, 2^31 - 1) and mallopt(M_TRIM_THRESHOLD, 2^31 - 1) at start:
//            blocks come from the heap and freed memory stays there for the next call. (The
//            largest values mallopt takes: its value is an int.)
//   default  glibc untouched (no mallopt call): its dynamic mmap threshold, as any program gets.
//
// Why glibc's knobs and not jemalloc (Debian's libjemalloc2): bench counts every allocation by
// replacing malloc and friends and forwarding them to glibc's __libc_* entry points
// (memory_accounting.hpp), so a preloaded jemalloc would never be called; using it would mean
// forwarding to its own API instead, it could not be switched off for one benchmark (the in-run
// probe below), and it cannot run under the sanitizers. jemalloc also needs tuning to help here:
// with its defaults a 64 MiB block is purged on free (blocks above its 8 MiB oversize_threshold go
// to an arena that decays at once) and costs the same faults as glibc's default; with
// MALLOC_CONF=dirty_decay_ms:-1 it keeps them, like the tuned glibc setting.
//
// The peak-memory accounting is unaffected in kind: it counts malloc_usable_size of the live blocks,
// whichever way glibc obtains them; only a block's usable size changes by the page rounding of an
// mmapped block (< 4 KiB per block). Under AddressSanitizer the sanitizer's allocator ignores
// mallopt; the setting is then recorded but has no effect.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ped::bench {

enum class AllocatorSetting : std::uint8_t { tuned, glibc_default };

// "tuned" or "default": the option's words.
const char* to_string(AllocatorSetting setting);
std::optional<AllocatorSetting> parse_allocator(const std::string& text);
// One line for a JSON context: the setting and the mallopt values it applied.
std::string describe(AllocatorSetting setting);

// Applies the setting at program start, before any benchmark: tuned calls mallopt; default does
// nothing (an earlier tuned setting stays: call it once, first). Throws std::runtime_error when
// glibc refuses a value.
void apply_allocator(AllocatorSetting setting);

// PED_BENCH_ALLOCATOR from the environment (tuned when unset or empty), for programs without their
// own option parser (bench_gpt). Throws std::invalid_argument naming the variable on another value.
AllocatorSetting allocator_from_environment(const char* program);

// The in-run probe: for the lifetime of this object glibc behaves as it does by default once its
// dynamic mmap threshold has risen to its ceiling (mallopt M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD
// 64 MiB, the values glibc's dynamic rule reaches; blocks of 32 MiB or more are mmapped and unmapped
// as by default), after malloc_trim(0) has handed the memory the tuned setting kept back to the
// kernel. The destructor restores the tuned values. For the blocks that matter (>= 32 MiB) this is
// exactly glibc's default; smaller blocks come from the heap as they do by default after the first
// call.
class GlibcDefaultScope {
 public:
  GlibcDefaultScope();
  ~GlibcDefaultScope();
  GlibcDefaultScope(const GlibcDefaultScope&) = delete;
  GlibcDefaultScope& operator=(const GlibcDefaultScope&) = delete;
};
// The probe's setting, for the JSON context.
std::string describe_glibc_default_probe();

}  // namespace ped::bench
