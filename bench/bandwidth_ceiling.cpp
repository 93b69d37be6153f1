#include "bench/bandwidth_ceiling.hpp"

#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ped::bench {

std::int64_t default_copy_bytes() {
  long cache = -1;
#ifdef _SC_LEVEL4_CACHE_SIZE
  cache = std::max(cache, sysconf(_SC_LEVEL4_CACHE_SIZE));
#endif
#ifdef _SC_LEVEL3_CACHE_SIZE
  cache = std::max(cache, sysconf(_SC_LEVEL3_CACHE_SIZE));
#endif
  constexpr std::int64_t low = std::int64_t{256} << 20, high = std::int64_t{1} << 30;
  return cache > 0 ? std::clamp(4 * static_cast<std::int64_t>(cache), low, high) : low;
}

namespace {

// A buffer of its own pages (mmap), returned to the system on destruction: the measurement leaves
// the heap that the benchmarks' allocator setting governs (allocator.hpp) as it found it.
class MappedBuffer {
 public:
  explicit MappedBuffer(std::size_t size) : size_(size) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("measure_copy_gbps: mmap of " + std::to_string(size) + " bytes failed");
    data_ = static_cast<unsigned char*>(p);
  }
  ~MappedBuffer() { munmap(data_, size_); }
  MappedBuffer(const MappedBuffer&) = delete;
  MappedBuffer& operator=(const MappedBuffer&) = delete;
  unsigned char* data() const { return data_; }

 private:
  unsigned char* data_ = nullptr;
  std::size_t size_;
};

}  // namespace

double measure_copy_gbps(std::int64_t bytes, int threads, int repetitions) {
  if (bytes < 1 || threads < 1 || repetitions < 1) {
    throw std::invalid_argument("measure_copy_gbps: bytes " + std::to_string(bytes) + ", threads " +
                                std::to_string(threads) + " and repetitions " + std::to_string(repetitions) +
                                " must all be >= 1");
  }
  const auto size = static_cast<std::size_t>(bytes);
  const MappedBuffer source(size), target(size);
  std::memset(source.data(), 1, size);  // every page touched before the timed copies
  std::memset(target.data(), 0, size);
  const auto copy = [&] {
#pragma omp parallel num_threads(threads)
    {
      const auto t = static_cast<std::size_t>(omp_get_thread_num());
      const auto n = static_cast<std::size_t>(omp_get_num_threads());
      const std::size_t begin = size * t / n, end = size * (t + 1) / n;
      std::memcpy(target.data() + begin, source.data() + begin, end - begin);
    }
  };
  copy();  // warm-up: the thread team, the caches' state
  double best = 0.0;
  for (int r = 0; r < repetitions; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    copy();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * static_cast<double>(size) / seconds / 1e9);
  }
  volatile unsigned char sink = target.data()[size / 2];
  (void)sink;
  return best;
}

}  // namespace ped::bench
