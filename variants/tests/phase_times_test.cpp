// AttentionOptions::phases: the per-phase time split of a call (attention.hpp, PhaseTimes).
// B batch, H heads, Nq/Nk tokens, d head dim. Structural checks only: results bitwise the same with
// and without the timing, the phases each kernel runs are timed, and the phases, each timed on one
// thread, add up to no more than threads x the call's wall time. No time limit is asserted.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <set>
#include <string>

#include "variants/tests/test_util.hpp"

namespace ped::test {
namespace {

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

std::int64_t total(const PhaseTimes& t) { return std::accumulate(t.ns.begin(), t.ns.end(), std::int64_t{0}); }

const std::vector<std::string>& timed_variants() {
  static const std::vector<std::string> names = {"blocked", "flash", "sparse"};
  return names;
}

TEST(PhaseTimes, NamesAreDistinct) {
  std::set<std::string> names;
  for (std::size_t p = 0; p < kAttentionPhaseCount; ++p) {
    const std::string name = to_string(static_cast<AttentionPhase>(p));
    EXPECT_NE(name, "unknown");
    names.insert(name);
  }
  EXPECT_EQ(names.size(), kAttentionPhaseCount);
}

// The registry says which implementations time their phases (bench reports the split of those).
TEST(PhaseTimes, RegistryFlagsTheTimedKernels) {
  for (const AttentionImpl* impl : builtin_impls()) {
    const bool timed = std::find(timed_variants().begin(), timed_variants().end(), impl->name) != timed_variants().end();
    EXPECT_EQ(impl->times_phases, timed) << impl->name;
  }
}

// Every variant x mask x tiling x {1, 40} x scale (the latter makes most rows dominated by one key,
// variants/kernels.hpp): the timed call's out, stats, dq, dk, dv are bitwise the untimed call's.
TEST(PhaseTimes, TimedResultsAreBitwiseTheUntimedOnes) {
  const AttentionShape shape{.batch = 1, .heads = 3, .seq_q = 70, .seq_k = 90, .head_dim = 16};
  for (double factor : {1.0, 40.0}) {
    Problem<float> p = make_problem<float>(shape, kSeed + 7);
    p.scale *= static_cast<float>(factor);
    for (const NamedMask& m : mask_catalogue(shape.seq_q, shape.seq_k)) {
      for (const AttentionImpl* impl : builtin_impls()) {
        for (AttentionOptions options : tilings(*impl)) {
          SCOPED_TRACE(impl->name + " " + m.name + " threads=" + std::to_string(options.threads) +
                       " scale x" + std::to_string(factor));
          const Result<float> plain = run<float>(*impl, p, m.mask, options);
          PhaseTimes times;
          options.phases = &times;
          const Result<float> timed = run<float>(*impl, p, m.mask, options);
          EXPECT_TRUE(bitwise_equal(plain.out, timed.out));
          EXPECT_TRUE(bitwise_equal(plain.lse, timed.lse));
          EXPECT_TRUE(bitwise_equal(plain.dq, timed.dq));
          EXPECT_TRUE(bitwise_equal(plain.dk, timed.dk));
          EXPECT_TRUE(bitwise_equal(plain.dv, timed.dv));
          for (std::int64_t ns : times.ns) EXPECT_GE(ns, 0);
        }
      }
    }
  }
}

// One forward and one backward call, timed apart, for each timed variant: the phases it runs are
// non-zero, the others zero, and their sum lies within the call (sum <= threads x wall time).
template <class Call>
std::int64_t wall_ns(Call&& call) {
  const auto t0 = std::chrono::steady_clock::now();
  call();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
}

TEST(PhaseTimes, EachPassTimesItsPhasesWithinTheCall) {
  const AttentionShape shape{.batch = 1, .heads = 2, .seq_q = 384, .seq_k = 384, .head_dim = 32};
  const Problem<float> p = make_problem<float>(shape, kSeed + 8);
  const std::size_t rows = static_cast<std::size_t>(shape.batch * shape.heads * shape.seq_q);
  for (const std::string& name : timed_variants()) {
    const AttentionImpl* impl = find_attention_impl(name);
    ASSERT_NE(impl, nullptr);
    for (int threads : {1, 2}) {
      SCOPED_TRACE(name + " threads=" + std::to_string(threads));
      std::vector<float> out(p.q.size()), dq(p.q.size()), dk(p.k.size()), dv(p.v.size());
      std::vector<RowStats<float>> stats(rows);
      PhaseTimes fwd, bwd;
      AttentionOptions options{.threads = threads};
      options.phases = &fwd;
      const std::int64_t fwd_wall = wall_ns([&] {
        run_forward<float>(*impl, shape, Mask::causal(), p.scale, p.q.data(), p.k.data(), p.v.data(), out.data(),
                           stats.data(), options);
      });
      options.phases = &bwd;
      const std::int64_t bwd_wall = wall_ns([&] {
        run_backward<float>(*impl, shape, Mask::causal(), p.scale, p.q.data(), p.k.data(), p.v.data(), out.data(),
                            stats.data(), p.dout.data(), dq.data(), dk.data(), dv.data(), options);
      });
      for (AttentionPhase ph : {AttentionPhase::score_gemm, AttentionPhase::mask, AttentionPhase::softmax,
                                AttentionPhase::value_gemm}) {
        EXPECT_GT(fwd[ph], 0) << to_string(ph);
      }
      for (AttentionPhase ph : {AttentionPhase::dv_gemm, AttentionPhase::dp_gemm, AttentionPhase::softmax_grad,
                                AttentionPhase::dq_gemm, AttentionPhase::dk_gemm, AttentionPhase::dominated}) {
        EXPECT_EQ(fwd[ph], 0) << to_string(ph);
      }
      for (AttentionPhase ph : {AttentionPhase::score_gemm, AttentionPhase::mask, AttentionPhase::softmax,
                                AttentionPhase::dv_gemm, AttentionPhase::dp_gemm, AttentionPhase::softmax_grad,
                                AttentionPhase::dq_gemm, AttentionPhase::dk_gemm}) {
        EXPECT_GT(bwd[ph], 0) << to_string(ph);
      }
      EXPECT_EQ(bwd[AttentionPhase::value_gemm], 0);
      // (The first causal rows see one or two keys and are dominated by one: that phase runs too.)
      EXPECT_GT(bwd[AttentionPhase::dominated], 0);
      EXPECT_LE(total(fwd), threads * fwd_wall);
      EXPECT_LE(total(bwd), threads * bwd_wall);
      // On one thread the phases are nearly all of the call: what lies outside them (checks, the
      // non-finite scan, D = rowsum(dO o O)) is O(N d) work against the phases' O(N^2 d). A ratio of
      // two times of the same call, so a loaded machine stretches both alike.
      if (threads == 1) {
        EXPECT_GE(2 * total(fwd), fwd_wall);
        EXPECT_GE(2 * total(bwd), bwd_wall);
      }
      std::printf("%s threads=%d: phases / (threads x wall) forward %.3f, backward %.3f\n", name.c_str(), threads,
                  static_cast<double>(total(fwd)) / static_cast<double>(threads * fwd_wall),
                  static_cast<double>(total(bwd)) / static_cast<double>(threads * bwd_wall));
    }
  }
}

// Scores 40 times larger make most rows dominated by one key: the backward times that handling.
TEST(PhaseTimes, DominatedRowsAreTimed) {
  const AttentionShape shape{.batch = 1, .heads = 2, .seq_q = 150, .seq_k = 140, .head_dim = 24};
  Problem<float> p = make_problem<float>(shape, kSeed + 9);
  p.scale *= 40.0f;
  for (const std::string& name : timed_variants()) {
    SCOPED_TRACE(name);
    PhaseTimes times;
    run<float>(*find_attention_impl(name), p, Mask::causal(), AttentionOptions{.threads = 2, .phases = &times});
    EXPECT_GT(times[AttentionPhase::dominated], 0);
  }
}

// The kernels add to what the struct holds (zeroing it is the caller's choice); naive times nothing.
TEST(PhaseTimes, KernelsAddToTheTotalsAndNaiveTimesNothing) {
  const AttentionShape shape{.batch = 1, .heads = 1, .seq_q = 40, .seq_k = 40, .head_dim = 8};
  const Problem<float> p = make_problem<float>(shape, kSeed + 10);
  PhaseTimes times;
  times[AttentionPhase::score_gemm] = std::int64_t{1} << 40;
  run<float>(*find_attention_impl("flash"), p, Mask::none(), AttentionOptions{.threads = 1, .phases = &times});
  EXPECT_GT(times[AttentionPhase::score_gemm], std::int64_t{1} << 40);
  PhaseTimes naive;
  run<float>(*find_attention_impl("naive"), p, Mask::causal(), AttentionOptions{.threads = 1, .phases = &naive});
  EXPECT_EQ(total(naive), 0);
}

}  // namespace
}  // namespace ped::test
