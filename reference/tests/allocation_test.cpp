// Buffers reused across training steps: a second call of the same shape allocates nothing in the
// attention path (reference per-head core, the GPT's attention forward and backward) and in GELU, and a
// GPT training step reusing its cache allocates less than one with a fresh cache.
//
// This executable counts heap allocations by replacing malloc, calloc, realloc, posix_memalign,
// aligned_alloc and memalign (forwarding to glibc's __libc_* entry points; operator new and Armadillo
// allocate through them); free stays glibc's. Not run under a sanitizer, which owns these functions.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "reference/attention.hpp"
#include "reference/gelu.hpp"
#include "reference/gpt.hpp"

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
}

namespace {
std::atomic<long> g_allocations{0};
}

extern "C" {
void* malloc(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* memalign(std::size_t alignment, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, n);
}
void* aligned_alloc(std::size_t alignment, std::size_t n) { return memalign(alignment, n); }
int posix_memalign(void** out, std::size_t alignment, std::size_t n) {
  void* p = memalign(alignment, n);
  if (p == nullptr) return 12;  // ENOMEM
  *out = p;
  return 0;
}
}

namespace ped::ref {
namespace {

long allocations() { return g_allocations.load(std::memory_order_relaxed); }

TEST(Allocation, CountingIsActive) {
  const long before = allocations();
  void* volatile p = std::malloc(24);
  std::free(p);
  EXPECT_EQ(allocations(), before + 1);
}

template <class T>
void expect_attention_core_allocates_nothing_twice() {
  const arma::uword d = 16, heads = 2, n = 24, batch = 3;
  Mat<T> q(d, batch * n, arma::fill::randn), k(d, batch * n, arma::fill::randn), v(d, batch * n, arma::fill::randn);
  Mat<T> dout(d, batch * n, arma::fill::randn), o(d, batch * n), dq(d, batch * n), dk(d, batch * n), dv(d, batch * n);
  const Mat<T> mask = additive_mask<T>(Mask::causal(), n);
  arma::Cube<T> p(n, n, batch * heads);
  const T scale = T(0.25);
  for (int call = 0; call < 2; ++call) {
    const long before = allocations();
    for (arma::uword b = 0; b < batch; ++b) {
      attention_heads_forward(q, k, v, heads, scale, mask, b * n, p, b * heads, o);
      attention_heads_backward(q, k, v, heads, scale, p, b * heads, dout, b * n, dq, dk, dv);
    }
    if (call == 1) {
      EXPECT_EQ(allocations() - before, 0) << "second call";
    }
  }
}

TEST(Allocation, AttentionHeadsSecondCallAllocatesNothing) {
  expect_attention_core_allocates_nothing_twice<float>();
  expect_attention_core_allocates_nothing_twice<double>();
}

TEST(Allocation, GeluIntoBuffersOfTheShapeAllocatesNothing) {
  for (const GeluApprox approx : {GeluApprox::tanh, GeluApprox::erf}) {
    const arma::fmat x(64, 37, arma::fill::randn), dy(64, 37, arma::fill::randn);
    arma::fmat y(64, 37), dx(64, 37), inplace = dy;
    gelu_backward(dy, x, approx, dx);  // the first erf backward sizes its per-thread scratch
    const long before = allocations();
    gelu_forward(x, approx, y);
    gelu_backward(dy, x, approx, dx);
    gelu_backward(inplace, x, approx, inplace);
    EXPECT_EQ(allocations() - before, 0) << to_string(approx);
    EXPECT_TRUE(arma::approx_equal(inplace, dx, "absdiff", 0.0f)) << "in place gives the same values";
  }
}

// One training step's allocations, fresh cache against a reused one. The attention path and GELU
// allocate nothing on the second step; what remains are the reference layers that return their
// results by value (linear, layer norm, residual, cross-entropy, embeddings: one Armadillo matrix
// each, moved into the cache), counted and printed here.
long step_allocations(const Gpt<float>& model, GptCache<float>& cache, GptTensors<float>& grads, const TokenIds& in,
                      const TokenIds& target, arma::uword batch) {
  const long before = allocations();
  model.forward(in, target, batch, cache);
  model.backward(cache, grads);
  return allocations() - before;
}

TEST(Allocation, AReusedCacheAllocatesLessPerStep) {
  for (const char* attention : {"reference", "flash"}) {
    const GptConfig cfg{.vocab = 11, .context = 16, .width = 16, .heads = 2, .layers = 2, .ffn = 32,
                        .attention = attention, .threads = 1};
    const Gpt<float> model(cfg, 1);
    GptTensors<float> grads(model.layout());
    const arma::uword batch = 4;
    TokenIds in(batch * cfg.context), target(batch * cfg.context);
    for (std::size_t i = 0; i < in.size(); ++i) {
      in[i] = static_cast<std::int64_t>(i % 11);
      target[i] = static_cast<std::int64_t>((i * 7) % 11);
    }
    GptCache<float> reused;
    step_allocations(model, reused, grads, in, target, batch);
    const long second = step_allocations(model, reused, grads, in, target, batch);
    GptCache<float> fresh;
    const long first = step_allocations(model, fresh, grads, in, target, batch);
    std::printf("%s attention: a step allocates %ld times with a fresh cache, %ld with a reused one\n", attention, first,
                second);
    RecordProperty(std::string(attention) + "_fresh", static_cast<int>(first));
    RecordProperty(std::string(attention) + "_reused", static_cast<int>(second));
    EXPECT_LT(second, first);
  }
}

}  // namespace
}  // namespace ped::ref
