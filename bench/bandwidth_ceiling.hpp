// The in-run memory bandwidth ceiling of the decoding cases: a copy of a buffer far beyond the
// last-level cache, at the run's thread count (the way gemm_ceiling.hpp measures SGEMM).
//
// Counted as STREAM's Copy counts it: the bytes read plus the bytes written per second (2 x the
// buffer's size per copy). Each of `threads` OpenMP threads copies its contiguous share with
// memcpy; both buffers are written once before the timed copies, so no page faults are timed. They
// are mapped pages of their own (mmap), unmapped afterwards, outside the heap.
// The best of `repetitions` copies is the ceiling: the rate the machine reached in this run, which
// a kernel streaming K and V from memory can approach but, counting only its reads, not exceed by
// much.
#pragma once

#include <cstdint>

namespace ped::bench {

// The default source size: 4 times the last-level cache sysconf reports (a VM may report the whole
// socket's), at least 256 MiB and at most 1 GiB, so that neither buffer stays in a cache.
std::int64_t default_copy_bytes();

// Best GB/s (2 x bytes / time) of `repetitions` copies of a `bytes`-byte buffer by `threads`
// threads, after one untimed copy. Throws std::invalid_argument naming the function for bytes < 1,
// threads < 1 or repetitions < 1, std::runtime_error when the buffers cannot be mapped.
double measure_copy_gbps(std::int64_t bytes, int threads, int repetitions = 5);

}  // namespace ped::bench
