// The plugin host: DLTensor views in both layouts, the child process, and loading the example
// plugins (examples/attention_plugin) into the registry, good and bad.
#include <gtest/gtest.h>
#include <chrono>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "plugin_host/child_process.hpp"
#include "plugin_host/host_tensor.hpp"
#include "plugin_host/plugin_loader.hpp"
#include "plugin_host/reduced_precision.hpp"
#include "variants/registry.hpp"

namespace ped::plugin {
namespace {

std::string example(const std::string& name) { return std::string(PED_EXAMPLE_PLUGIN_DIR) + "/lib" + name + ".so"; }

// Expects f() to throw E whose message contains every part.
template <class E, class F>
void expect_throw(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const E& e) {
    for (const std::string& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

std::vector<double> iota(std::size_t n) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = 0.5 + static_cast<double>(i);
  return v;
}

TEST(HostTensor, ContiguousIsTheCallersBufferRowMajor) {
  std::vector<double> data = iota(2 * 3 * 4 * 5);
  HostTensor<double> t({2, 3, 4, 5}, PluginLayout::contiguous, data.data());
  EXPECT_EQ(t.dl()->data, data.data());
  EXPECT_EQ(t.dl()->byte_offset, 0u);
  EXPECT_EQ(std::vector<std::int64_t>(t.dl()->strides, t.dl()->strides + 4), (std::vector<std::int64_t>{60, 20, 5, 1}));
  EXPECT_EQ(t.dl()->dtype.bits, 64);
  EXPECT_EQ(t.dl()->dtype.code, kDLFloat);
}

TEST(HostTensor, StridedIsATransposedPaddedOffsetView) {
  const std::vector<double> source = iota(2 * 3 * 4 * 5);
  HostTensor<double> t({2, 3, 4, 5}, PluginLayout::strided, nullptr);
  t.load(source.data());
  const DLTensor* dl = t.dl();
  // stored (B, N, H, d + 3) = (2, 4, 3, 8): strides (b, h, n, c) = (96, 8, 24, 1)
  EXPECT_EQ(std::vector<std::int64_t>(dl->strides, dl->strides + 4), (std::vector<std::int64_t>{96, 8, 24, 1}));
  EXPECT_EQ(dl->byte_offset, 2 * sizeof(double));
  const double* first = reinterpret_cast<const double*>(static_cast<const char*>(dl->data) + dl->byte_offset);
  for (std::int64_t b = 0; b < 2; ++b) {
    for (std::int64_t h = 0; h < 3; ++h) {
      for (std::int64_t n = 0; n < 4; ++n) {
        for (std::int64_t c = 0; c < 5; ++c) {
          EXPECT_EQ(first[b * 96 + h * 8 + n * 24 + c], source[static_cast<std::size_t>(((b * 3 + h) * 4 + n) * 5 + c)]);
        }
      }
    }
  }
  std::vector<double> back(source.size());
  t.store(back.data());
  EXPECT_EQ(back, source);
  EXPECT_NO_THROW(t.check_padding("x"));
  EXPECT_NO_THROW(t.check_unchanged(source.data(), "x"));
  // The element just past (0, 0, 0, d - 1) is padding.
  const_cast<double*>(first)[5] = 1.0;
  expect_throw<std::runtime_error>([&] { t.check_padding("out"); }, {"wrote outside the elements of out", "1 padding"});
  const_cast<double*>(first)[0] = -1.0;
  expect_throw<std::runtime_error>([&] { t.check_unchanged(source.data(), "q"); }, {"wrote into the input q"});
}

TEST(HostTensor, StridedRowStatisticsTransposeHeadsAndRows) {
  HostTensor<float> t({2, 3, 4}, PluginLayout::strided, nullptr);
  // stored (B, N, H + 1) = (2, 4, 4): strides (b, h, n) = (16, 1, 4)
  EXPECT_EQ(std::vector<std::int64_t>(t.dl()->strides, t.dl()->strides + 3), (std::vector<std::int64_t>{16, 1, 4}));
  EXPECT_EQ(t.dl()->dtype.bits, 32);
}

TEST(ChildProcess, ReturnsWhatTheWorkReturned) {
  const ChildOutcome o = run_in_child([] { return std::string(200000, 'x') + "end"; });  // more than a pipe holds
  EXPECT_TRUE(o.completed);
  EXPECT_EQ(o.output.size(), 200003u);
  EXPECT_EQ(o.output.substr(200000), "end");
}

TEST(ChildProcess, ReportsSignalsExitsAndExceptions) {
  const ChildOutcome aborted = run_in_child([]() -> std::string { std::abort(); });
  EXPECT_FALSE(aborted.completed);
  EXPECT_EQ(aborted.signal, SIGABRT);
  EXPECT_NE(aborted.failure.find("killed by signal 6"), std::string::npos) << aborted.failure;
  const ChildOutcome exited = run_in_child([]() -> std::string { std::_Exit(3); });
  EXPECT_FALSE(exited.completed);
  EXPECT_EQ(exited.failure, "exited with status 3");
  const ChildOutcome threw = run_in_child([]() -> std::string { throw std::runtime_error("no luck"); });
  EXPECT_FALSE(threw.completed);
  EXPECT_EQ(threw.failure, "threw: no luck");
}

// A child that never finishes is killed at the time limit, with everything it started; one that
// finishes within it is not affected by it.
TEST(ChildProcess, ATimeLimitEndsAChildThatHangs) {
  const ChildOutcome hung = run_in_child(
      []() -> std::string {
        if (::fork() == 0) {  // a grandchild that keeps the pipe open: only a group kill ends it
          for (;;) ::pause();
        }
        for (;;) ::pause();
      },
      {.time_limit = std::chrono::milliseconds(300)});
  EXPECT_FALSE(hung.completed);
  EXPECT_TRUE(hung.timed_out);
  EXPECT_EQ(hung.signal, SIGKILL);
  EXPECT_EQ(hung.failure, "did not finish within 0.3 s and was killed");
  const ChildOutcome quick = run_in_child([] { return std::string("done"); }, {.time_limit = std::chrono::seconds(60)});
  EXPECT_TRUE(quick.completed);
  EXPECT_FALSE(quick.timed_out);
  EXPECT_EQ(quick.output, "done");
  EXPECT_THROW(run_in_child([] { return std::string(); }, {.time_limit = std::chrono::milliseconds(-1)}),
               std::invalid_argument);
}

// out, lse of `impl` for random inputs, in double.
struct Result {
  std::vector<double> out, lse, dq, dk, dv;
};

Result run(const AttentionImpl& impl, const AttentionShape& s, const Mask& mask) {
  const auto nq = static_cast<std::size_t>(s.batch * s.heads * s.seq_q * s.head_dim);
  const auto nk = static_cast<std::size_t>(s.batch * s.heads * s.seq_k * s.head_dim);
  std::vector<double> q(nq), k(nk), v(nk), dout(nq);
  unsigned state = 12345;
  auto next = [&] {
    state = state * 1103515245u + 12345u;
    return static_cast<double>((state >> 8) & 0xFFFF) / 65536.0 - 0.5;
  };
  for (auto* t : {&q, &k, &v, &dout}) {
    for (double& x : *t) x = next();
  }
  Result r{std::vector<double>(nq), std::vector<double>(static_cast<std::size_t>(s.batch * s.heads * s.seq_q)),
           std::vector<double>(nq), std::vector<double>(nk), std::vector<double>(nk)};
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  std::vector<RowStatistic<double>> stats(r.lse.size());
  run_forward<double>(impl, s, mask, scale, q.data(), k.data(), v.data(), r.out.data(), stats.data());
  for (std::size_t i = 0; i < stats.size(); ++i) r.lse[i] = stats[i].lse();
  run_backward<double>(impl, s, mask, scale, q.data(), k.data(), v.data(), r.out.data(), stats.data(), dout.data(),
                       r.dq.data(), r.dk.data(), r.dv.data());
  return r;
}

double max_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;  // equal infinities (lse of a row without keys)
    worst = std::max(worst, std::abs(a[i] - b[i]));
  }
  return worst;
}

TEST(Loader, TheSimplePluginMatchesTheNaiveKernelInBothLayouts) {
  const LoadedPlugin p =
      load_attention_plugin(example("ped_plugin_simple"), {.layouts = {PluginLayout::contiguous, PluginLayout::strided}});
  EXPECT_EQ(p.name, "simple");
  EXPECT_EQ(p.variants, (std::vector<std::string>{"simple", "simple[strided]"}));
  EXPECT_TRUE(p.float32 && p.float64 && p.bfloat16 && p.float16 && p.backward);
  EXPECT_NE(describe(p).find("simple (float32, float64, bfloat16, float16; masks none, causal, sliding_window, "
                             "explicit_blocks, elements"),
            std::string::npos)
      << describe(p);
  const AttentionShape shape{.batch = 2, .heads = 3, .seq_q = 7, .seq_k = 11, .head_dim = 5};
  const std::vector<Mask> masks = {
      Mask::none(), Mask::causal(), Mask::sliding_window(2, 1),
      Mask::explicit_blocks(4, 4, 2, 3, {1, 0, 1, 0, 1, 1}), Mask::bigbird(2, 1, 1, 1, 7),
      Mask::causal() & Mask::strided(2, false)};
  for (const std::string& variant : p.variants) {
    const AttentionImpl& impl = attention_impl(variant);
    EXPECT_TRUE(impl.isolate);
    EXPECT_EQ(impl.origin, example("ped_plugin_simple"));
    for (const Mask& mask : masks) {
      const Result ours = run(impl, shape, mask), naive = run(attention_impl("naive"), shape, mask);
      EXPECT_LT(max_difference(ours.out, naive.out), 1e-13) << variant << " " << mask.name();
      EXPECT_LT(max_difference(ours.lse, naive.lse), 1e-13) << variant << " " << mask.name();
      EXPECT_LT(max_difference(ours.dq, naive.dq), 1e-13) << variant << " " << mask.name();
      EXPECT_LT(max_difference(ours.dk, naive.dk), 1e-13) << variant << " " << mask.name();
      EXPECT_LT(max_difference(ours.dv, naive.dv), 1e-13) << variant << " " << mask.name();
    }
  }
  expect_throw<std::invalid_argument>([] { load_attention_plugin(example("ped_plugin_simple")); },
                                      {"name 'simple' is already registered", "ped_plugin_simple.so"});
}

double norm(const std::vector<double>& a) {
  double sum = 0;
  for (double x : a) sum += x * x;
  return std::sqrt(sum);
}

// The simple plugin in bfloat16 and float16 through plugin_host/reduced_precision.hpp, both layouts:
// it computes in double and rounds on store, so out is the naive kernel's out rounded to the dtype
// (within half a unit of the dtype, relative), lse (float64) the naive kernel's, and the gradients
// (from the rounded out) within a few units normwise. Inputs are multiples of 1/8 in [-1, 1], exact
// in both dtypes.
TEST(Loader, TheSimplePluginRunsInSixteenBitDtypesInBothLayouts) {
  if (find_attention_impl("simple") == nullptr) {  // loaded already when the test above ran in this process
    load_attention_plugin(example("ped_plugin_simple"), {.layouts = {PluginLayout::contiguous, PluginLayout::strided}});
  }
  const AttentionShape s{.batch = 2, .heads = 1, .seq_q = 6, .seq_k = 9, .head_dim = 4};
  const auto nq = static_cast<std::size_t>(s.batch * s.heads * s.seq_q * s.head_dim);
  const auto nk = static_cast<std::size_t>(s.batch * s.heads * s.seq_k * s.head_dim);
  std::vector<double> q(nq), k(nk), v(nk), dout(nq);
  unsigned state = 99;
  for (auto* t : {&q, &k, &v, &dout}) {
    for (double& x : *t) {
      state = state * 1103515245u + 12345u;
      x = static_cast<double>(static_cast<int>((state >> 16) % 17) - 8) / 8.0;
    }
  }
  const double scale = 0.5;
  const Mask mask = Mask::causal();
  std::vector<double> out(nq), dq(nq), dk(nk), dv(nk);
  std::vector<RowStatistic<double>> stats(static_cast<std::size_t>(s.batch * s.heads * s.seq_q));
  run_forward<double>(attention_impl("naive"), s, mask, scale, q.data(), k.data(), v.data(), out.data(), stats.data());
  run_backward<double>(attention_impl("naive"), s, mask, scale, q.data(), k.data(), v.data(), out.data(), stats.data(),
                       dout.data(), dq.data(), dk.data(), dv.data());
  auto floats = [](const std::vector<double>& x) { return std::vector<float>(x.begin(), x.end()); };
  const std::vector<float> fq = floats(q), fk = floats(k), fv = floats(v), fdout = floats(dout);
  for (const std::string& variant : {std::string("simple"), std::string("simple[strided]")}) {
    for (ReducedDtype dtype : {ReducedDtype::bfloat16, ReducedDtype::float16}) {
      const std::string what = variant + " " + to_string(dtype);
      const ReducedPrecisionKernel* kernel = find_reduced_precision_kernel(variant, dtype);
      ASSERT_NE(kernel, nullptr) << what;
      const double eps = dtype == ReducedDtype::bfloat16 ? std::ldexp(1.0, -7) : std::ldexp(1.0, -10);
      std::vector<float> o(nq), gq(nq), gk(nk), gv(nk);
      std::vector<double> lse(stats.size());
      kernel->forward(s, mask, scale, fq.data(), fk.data(), fv.data(), o.data(), lse.data(), {});
      for (std::size_t i = 0; i < nq; ++i) {
        EXPECT_LE(std::abs(o[i] - out[i]), eps / 2 * std::abs(out[i]) + 1e-7) << what << " out " << i;
      }
      for (std::size_t i = 0; i < lse.size(); ++i) EXPECT_NEAR(lse[i], stats[i].lse(), 1e-12) << what << " lse " << i;
      kernel->backward(s, mask, scale, fq.data(), fk.data(), fv.data(), o.data(), lse.data(), fdout.data(), gq.data(),
                       gk.data(), gv.data(), {});
      for (const auto& [ours, naive, name] : {std::tuple{&gq, &dq, "dq"}, std::tuple{&gk, &dk, "dk"},
                                              std::tuple{&gv, &dv, "dv"}}) {
        std::vector<double> diff(naive->size());
        for (std::size_t i = 0; i < diff.size(); ++i) diff[i] = (*ours)[i] - (*naive)[i];
        EXPECT_LE(norm(diff), 4 * eps * norm(*naive)) << what << " " << name;
      }
    }
  }
  EXPECT_EQ(find_reduced_precision_kernel("naive", ReducedDtype::bfloat16), nullptr);
}

TEST(Loader, IgnoringStridesIsCaughtInTheStridedLayoutOnly) {
  load_attention_plugin(example("ped_plugin_ignores_strides"),
                        {.layouts = {PluginLayout::contiguous, PluginLayout::strided}});
  const AttentionShape shape{.batch = 1, .heads = 2, .seq_q = 3, .seq_k = 3, .head_dim = 2};
  const Result contiguous = run(attention_impl("ignores_strides"), shape, Mask::causal());
  const Result naive = run(attention_impl("naive"), shape, Mask::causal());
  EXPECT_LT(max_difference(contiguous.out, naive.out), 1e-13);
  expect_throw<std::runtime_error>([&] { run(attention_impl("ignores_strides[strided]"), shape, Mask::causal()); },
                                   {"plugin 'ignores_strides' forward wrote outside the elements of out"});
}

TEST(Loader, BadLibrariesAreRefusedWithTheReason) {
  expect_throw<std::invalid_argument>([] { load_attention_plugin("/no/such/plugin.so"); },
                                      {"load_attention_plugin: /no/such/plugin.so: no such file"});
  expect_throw<std::invalid_argument>([] { load_attention_plugin(PED_THIS_SOURCE_FILE); }, {"cannot be loaded"});
  expect_throw<std::invalid_argument>([] { load_attention_plugin(example("ped_plugin_no_entry_point")); },
                                      {"has no entry point 'pedestrian_attention_plugin'"});
  expect_throw<std::invalid_argument>([] { load_attention_plugin(example("ped_plugin_abi_version_three")); },
                                      {"speaks attention plugin ABI version 3, this harness speaks versions 1 and 2"});
  EXPECT_EQ(find_attention_impl("abi_version_three"), nullptr);
  // the registry's entries need a float or double forward: a 16-bit dtype alone is refused
  expect_throw<std::invalid_argument>(
      [] { load_attention_plugin(example("ped_plugin_bfloat16_only")); },
      {"plugin 'bfloat16_only': dtypes = 0x4 declares no PED_DTYPE_FLOAT32 or PED_DTYPE_FLOAT64"});
  EXPECT_EQ(find_attention_impl("bfloat16_only"), nullptr);
}

TEST(Loader, AnErrorTheKernelReturnsIsThrownWithItsMessage) {
  load_attention_plugin(example("ped_plugin_returns_error"));
  const AttentionShape shape{.batch = 1, .heads = 1, .seq_q = 2, .seq_k = 2, .head_dim = 2};
  std::vector<float> q(4, 0.5f), out(4);
  std::vector<RowStatistic<float>> lse(2);
  expect_throw<std::runtime_error>(
      [&] {
        run_forward<float>(attention_impl("returns_error"), shape, Mask::none(), 1.0f, q.data(), q.data(), q.data(),
                           out.data(), lse.data());
      },
      {"plugin 'returns_error' forward returned error 7: returns_error: this kernel refuses every call"});
  // Masks the plugin does not take are refused before the call.
  expect_throw<std::invalid_argument>(
      [&] {
        run_forward<float>(attention_impl("returns_error"), shape, Mask::sliding_window(1, 1), 1.0f, q.data(),
                           q.data(), q.data(), out.data(), lse.data());
      },
      {"attention_forward", "'returns_error' does not accept mask sliding_window(left=1,right=1)"});
}

}  // namespace
}  // namespace ped::plugin
