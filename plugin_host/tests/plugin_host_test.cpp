// The plugin host: DLTensor views in both layouts, the child process, and loading the example
// plugins (examples/attention_plugin) into the registry, good and bad.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <algorithm>
#include <chrono>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "pedestrian/attention_plugin.h"
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

// ---- ABI version 2: the attention features ------------------------------------------------------

const AttentionImpl& loaded_impl(const std::string& library, const std::string& variant,
                                 std::vector<PluginLayout> layouts = {PluginLayout::contiguous}) {
  if (find_attention_impl(variant) == nullptr) load_attention_plugin(example(library), {.layouts = std::move(layouts)});
  return attention_impl(variant);
}

// One call with features: its shape, mask and feature values (the pointers of features() point here).
struct FeatureCase {
  std::string name;
  AttentionShape shape;
  Mask mask;
  std::vector<double> slopes, sinks;
  double softcap = 0, dropout_p = 0;
  std::uint64_t seed = 0;
  std::vector<std::int64_t> seqlens_q, seqlens_k;

  AttentionFeatures features() const {
    AttentionFeatures f;
    f.alibi_slopes = slopes.empty() ? nullptr : slopes.data();
    f.sinks = sinks.empty() ? nullptr : sinks.data();
    f.softcap = softcap;
    f.dropout_p = dropout_p;
    f.dropout_seed = seed;
    f.seqlens_q = seqlens_q.empty() ? nullptr : seqlens_q.data();
    f.seqlens_k = seqlens_k.empty() ? nullptr : seqlens_k.data();
    return f;
  }
};

struct FeatureInputs {
  std::vector<double> q, k, v, dout;
};

// Inputs in [-1, 1) at multiples of 2^-10 (exact in float), scale 0.8 (soft-cap 0.4 then bends the
// larger scores well away from the identity).
FeatureInputs feature_inputs(const AttentionShape& s) {
  const auto nq = static_cast<std::size_t>(s.batch * s.heads * s.seq_q * s.head_dim);
  const auto nk = static_cast<std::size_t>(s.batch * s.kv_heads() * s.seq_k * s.head_dim);
  FeatureInputs in{std::vector<double>(nq), std::vector<double>(nk), std::vector<double>(nk), std::vector<double>(nq)};
  unsigned state = 2024;
  for (auto* t : {&in.q, &in.k, &in.v, &in.dout}) {
    for (double& x : *t) {
      state = state * 1103515245u + 12345u;
      x = static_cast<double>(static_cast<int>((state >> 8) & 0x7FF) - 1024) / 1024.0;
    }
  }
  return in;
}
constexpr double kFeatureScale = 0.8;

struct FeatureResult {
  std::vector<double> out, lse, dq, dk, dv, dsinks;
};

// impl through the registry in T (inputs rounded to T, exact here), results widened to double.
template <class T>
FeatureResult run_features(const AttentionImpl& impl, const FeatureCase& c, const FeatureInputs& in) {
  const AttentionShape& s = c.shape;
  auto to_t = [](const std::vector<double>& x) { return std::vector<T>(x.begin(), x.end()); };
  const std::vector<T> q = to_t(in.q), k = to_t(in.k), v = to_t(in.v), dout = to_t(in.dout);
  std::vector<T> out(q.size()), dq(q.size()), dk(k.size()), dv(k.size());
  std::vector<RowStatistic<T>> stats(static_cast<std::size_t>(s.batch * s.heads * s.seq_q));
  FeatureResult r;
  r.dsinks.assign(c.sinks.size(), std::numeric_limits<double>::quiet_NaN());
  AttentionOptions options;
  options.features = c.features();
  options.features.dsinks = r.dsinks.empty() ? nullptr : r.dsinks.data();
  const T scale = static_cast<T>(kFeatureScale);
  run_forward<T>(impl, s, c.mask, scale, q.data(), k.data(), v.data(), out.data(), stats.data(), options);
  run_backward<T>(impl, s, c.mask, scale, q.data(), k.data(), v.data(), out.data(), stats.data(), dout.data(),
                  dq.data(), dk.data(), dv.data(), options);
  auto widen = [](const std::vector<T>& x) { return std::vector<double>(x.begin(), x.end()); };
  r.out = widen(out), r.dq = widen(dq), r.dk = widen(dk), r.dv = widen(dv);
  for (const RowStatistic<T>& st : stats) r.lse.push_back(static_cast<double>(st.lse()));
  return r;
}

// The header's math spelled out, in double, one (b, h, i) at a time: the independent reference the
// plugin's features are checked against (the registry's naive kernel too, where it declares them).
FeatureResult reference(const FeatureCase& c, const FeatureInputs& in) {
  const AttentionShape& s = c.shape;
  const std::int64_t B = s.batch, H = s.heads, Hkv = s.kv_heads(), nq = s.seq_q, nk = s.seq_k, d = s.head_dim;
  const double sc = kFeatureScale;
  FeatureResult r{std::vector<double>(in.q.size(), 0.0), std::vector<double>(static_cast<std::size_t>(B * H * nq)),
                  std::vector<double>(in.q.size(), 0.0), std::vector<double>(in.k.size(), 0.0),
                  std::vector<double>(in.k.size(), 0.0), std::vector<double>(c.sinks.size(), 0.0)};
  std::fill(r.lse.begin(), r.lse.end(), -std::numeric_limits<double>::infinity());
  // Row i of head h (of `heads`) of sequence b in a (B, heads, len, d) buffer.
  auto at = [d](std::int64_t b, std::int64_t h, std::int64_t heads, std::int64_t i, std::int64_t len) {
    return static_cast<std::size_t>(((b * heads + h) * len + i) * d);
  };
  std::vector<KeyInterval> intervals;
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t lq = c.seqlens_q.empty() ? nq : c.seqlens_q[static_cast<std::size_t>(b)];
    const std::int64_t lk = c.seqlens_k.empty() ? nk : c.seqlens_k[static_cast<std::size_t>(b)];
    for (std::int64_t h = 0; h < H; ++h) {
      const std::int64_t hk = h / (H / Hkv);
      const double sink = c.sinks.empty() ? -std::numeric_limits<double>::infinity() : c.sinks[static_cast<std::size_t>(h)];
      for (std::int64_t i = 0; i < lq; ++i) {
        const std::int64_t p = i + lk - lq;
        const std::size_t qi = at(b, h, H, i, nq);
        std::vector<double> S(static_cast<std::size_t>(lk), -std::numeric_limits<double>::infinity()), t(S.size(), 0.0);
        if (lk > 0) {
          c.mask.row_intervals(i, lq, lk, intervals);
          for (const KeyInterval& iv : intervals) {
            for (std::int64_t j = iv.lo; j < iv.hi; ++j) {
              const std::size_t kj = at(b, hk, Hkv, j, nk);
              double dot = 0;
              for (std::int64_t e = 0; e < d; ++e) dot += in.q[qi + e] * in.k[kj + e];
              double x = sc * dot;
              if (c.softcap > 0) {
                t[j] = std::tanh(x / c.softcap);
                x = c.softcap * t[j];
              }
              if (!c.slopes.empty()) x -= c.slopes[static_cast<std::size_t>(h)] * static_cast<double>(std::abs(p - j));
              S[j] = x;
            }
          }
        }
        double m = sink;
        for (double x : S) m = std::max(m, x);
        if (m == -std::numeric_limits<double>::infinity()) continue;  // no key, no sink: out 0, lse -inf
        double den = std::exp(sink - m);
        for (double x : S) den += std::exp(x - m);
        r.lse[static_cast<std::size_t>((b * H + h) * nq + i)] = m + std::log(den);
        std::vector<double> P(S.size()), Z(S.size(), 1.0);
        const std::uint64_t threshold = ped_dropout_threshold(c.dropout_p);
        const std::uint64_t row_key = ped_dropout_row_key(c.seed, b, h, i);
        for (std::size_t j = 0; j < S.size(); ++j) {
          P[j] = std::exp(S[j] - m) / den;
          if (c.dropout_p > 0) Z[j] = ped_dropout_keep_at(row_key, static_cast<std::int64_t>(j), threshold) ? 1.0 / (1.0 - c.dropout_p) : 0.0;
        }
        for (std::size_t j = 0; j < S.size(); ++j) {
          const std::size_t vj = at(b, hk, Hkv, static_cast<std::int64_t>(j), nk);
          for (std::int64_t e = 0; e < d; ++e) r.out[qi + e] += P[j] * Z[j] * in.v[vj + e];
        }
        double D = 0;
        for (std::int64_t e = 0; e < d; ++e) D += in.dout[qi + e] * r.out[qi + e];
        if (!c.sinks.empty()) r.dsinks[static_cast<std::size_t>(h)] -= std::exp(sink - m) / den * D;
        for (std::size_t j = 0; j < S.size(); ++j) {
          if (P[j] == 0) continue;
          const std::size_t kj = at(b, hk, Hkv, static_cast<std::int64_t>(j), nk);
          double dP = 0;
          for (std::int64_t e = 0; e < d; ++e) dP += in.dout[qi + e] * in.v[kj + e];
          double dS = P[j] * (dP * Z[j] - D);
          if (c.softcap > 0) dS *= 1 - t[j] * t[j];
          for (std::int64_t e = 0; e < d; ++e) {
            r.dq[qi + e] += sc * dS * in.k[kj + e];
            r.dk[kj + e] += sc * dS * in.q[qi + e];
            r.dv[kj + e] += P[j] * Z[j] * in.dout[qi + e];
          }
        }
      }
    }
  }
  return r;
}

// The largest |a - b| of each quantity, with equal infinities (lse of rows without keys) equal.
void expect_close(const FeatureResult& ours, const FeatureResult& truth, double tolerance, const std::string& what) {
  for (const auto& [a, b, name] : {std::tuple{&ours.out, &truth.out, "out"}, std::tuple{&ours.lse, &truth.lse, "lse"},
                                   std::tuple{&ours.dq, &truth.dq, "dq"}, std::tuple{&ours.dk, &truth.dk, "dk"},
                                   std::tuple{&ours.dv, &truth.dv, "dv"}, std::tuple{&ours.dsinks, &truth.dsinks, "dsinks"}}) {
    ASSERT_EQ(a->size(), b->size()) << what << " " << name;
    for (std::size_t i = 0; i < a->size(); ++i) {
      if ((*a)[i] == (*b)[i]) continue;
      EXPECT_LE(std::abs((*a)[i] - (*b)[i]), tolerance) << what << " " << name << "[" << i << "] = " << (*a)[i]
                                                        << ", expected " << (*b)[i];
    }
  }
}

// Every feature alone, then all at once, under masks that reach the plugin as each ABI kind (the
// lengths with a composed mask: ELEMENTS, one block per sequence).
std::vector<FeatureCase> feature_cases() {
  const Mask causal_strided = Mask::causal() & Mask::strided(2, false);
  std::vector<FeatureCase> cases;
  cases.push_back({.name = "grouped_query", .shape = {.batch = 2, .heads = 4, .seq_q = 5, .seq_k = 7, .head_dim = 3, .heads_kv = 2},
                   .mask = Mask::causal()});
  cases.push_back({.name = "multi_query", .shape = {.batch = 1, .heads = 3, .seq_q = 6, .seq_k = 6, .head_dim = 4, .heads_kv = 1},
                   .mask = Mask::sliding_window(2, 1)});
  cases.push_back({.name = "lengths", .shape = {.batch = 3, .heads = 2, .seq_q = 6, .seq_k = 8, .head_dim = 3},
                   .mask = causal_strided, .seqlens_q = {6, 3, 2}, .seqlens_k = {8, 5, 0}});
  cases.push_back({.name = "lengths_causal", .shape = {.batch = 2, .heads = 1, .seq_q = 5, .seq_k = 5, .head_dim = 2},
                   .mask = Mask::causal(), .seqlens_q = {5, 0}, .seqlens_k = {3, 4}});
  cases.push_back({.name = "alibi", .shape = {.batch = 1, .heads = 2, .seq_q = 7, .seq_k = 9, .head_dim = 3},
                   .mask = Mask::causal(), .slopes = {0.5, 0.125}});
  cases.push_back({.name = "alibi_both_sides", .shape = {.batch = 1, .heads = 2, .seq_q = 7, .seq_k = 9, .head_dim = 3},
                   .mask = Mask::sliding_window(3, 2), .slopes = {0.25, 1.0}});
  cases.push_back({.name = "softcap", .shape = {.batch = 2, .heads = 2, .seq_q = 5, .seq_k = 6, .head_dim = 8},
                   .mask = Mask::none(), .softcap = 0.4});
  cases.push_back({.name = "dropout", .shape = {.batch = 2, .heads = 2, .seq_q = 6, .seq_k = 7, .head_dim = 3},
                   .mask = Mask::none(), .dropout_p = 0.3, .seed = 42});
  // Query rows 0..3 see no key (an empty block row): with sinks their lse is the sink and out 0.
  cases.push_back({.name = "sinks", .shape = {.batch = 2, .heads = 2, .seq_q = 7, .seq_k = 11, .head_dim = 3},
                   .mask = Mask::explicit_blocks(4, 4, 2, 3, {0, 0, 0, 1, 0, 1}), .sinks = {0.7, -1.2}});
  cases.push_back({.name = "all", .shape = {.batch = 3, .heads = 4, .seq_q = 6, .seq_k = 8, .head_dim = 4, .heads_kv = 2},
                   .mask = causal_strided, .slopes = {0.5, 0.25, 0.125, 0.0625}, .sinks = {0.3, -0.5, 1.0, 0.0},
                   .softcap = 0.6, .dropout_p = 0.25, .seed = 7, .seqlens_q = {6, 4, 1}, .seqlens_k = {8, 6, 3}});
  return cases;
}

TEST(Version2, TheSimplePluginDeclaresEveryFeature) {
  const AttentionImpl& impl =
      loaded_impl("ped_plugin_simple", "simple", {PluginLayout::contiguous, PluginLayout::strided});
  EXPECT_EQ(impl.features, kAllAttentionFeatures);
  EXPECT_EQ(attention_impl("simple[strided]").features, kAllAttentionFeatures);
  const auto it = std::find_if(loaded_plugins().begin(), loaded_plugins().end(),
                               [](const LoadedPlugin& l) { return l.name == "simple"; });
  ASSERT_NE(it, loaded_plugins().end());
  const LoadedPlugin& p = *it;
  EXPECT_EQ(p.abi_version, 2u);
  EXPECT_NE(describe(p).find("ABI version 2, features grouped_query, variable_length, dropout, alibi, softcap, sinks"),
            std::string::npos)
      << describe(p);
}

// Each feature, both layouts, float and double: the plugin agrees with the reference above and with
// the naive kernel (which declares every feature).
// Tolerances: in double both compute in double from the same inputs (rounding differences of order
// 1e-16 on values of order 1; 1e-12 leaves room for the sums' order). In float the plugin rounds out
// and the row statistics cross the ABI as a float64 lse and come back as float RowStats, so the
// backward sees out and P with relative errors of a few float eps (6e-8); the differences observed
// stay below 3e-7 (5 eps), so 1e-6 (about 17 eps on values of order 1) is that with room for other
// inputs, and far below the errors of a wrong feature (order 1e-3 and up).
TEST(Version2, TheSimplePluginAgreesWithTheReferenceAndTheNaiveKernelOnEachFeature) {
  loaded_impl("ped_plugin_simple", "simple", {PluginLayout::contiguous, PluginLayout::strided});
  const AttentionImpl& naive = attention_impl("naive");
  int naive_compared = 0;
  for (const FeatureCase& c : feature_cases()) {
    const FeatureInputs in = feature_inputs(c.shape);
    const FeatureResult truth = reference(c, in);
    const bool naive_has_it = naive.supports_features(c.features().used(c.shape));
    const FeatureResult naive64 = naive_has_it ? run_features<double>(naive, c, in) : FeatureResult{};
    const FeatureResult naive32 = naive_has_it ? run_features<float>(naive, c, in) : FeatureResult{};
    for (const std::string variant : {"simple", "simple[strided]"}) {
      const AttentionImpl& impl = attention_impl(variant);
      const FeatureResult ours64 = run_features<double>(impl, c, in), ours32 = run_features<float>(impl, c, in);
      expect_close(ours64, truth, 1e-12, variant + " double " + c.name + " vs reference");
      expect_close(ours32, truth, 1e-6, variant + " float " + c.name + " vs reference");
      if (naive_has_it) {
        expect_close(ours64, naive64, 1e-12, variant + " double " + c.name + " vs naive");
        expect_close(ours32, naive32, 1e-6, variant + " float " + c.name + " vs naive");
        ++naive_compared;
      }
    }
  }
  // The naive kernel declares every feature: each case was compared with it, in both layouts.
  EXPECT_EQ(naive.features, kAllAttentionFeatures);
  EXPECT_EQ(naive_compared, 2 * static_cast<int>(feature_cases().size()));
}

// The reference is no echo of the plugin: a feature value changed in the reference alone is caught.
TEST(Version2, TheComparisonCatchesAWrongFeature) {
  const AttentionImpl& impl =
      loaded_impl("ped_plugin_simple", "simple", {PluginLayout::contiguous, PluginLayout::strided});
  for (FeatureCase c : feature_cases()) {
    if (c.name != "all") continue;
    const FeatureInputs in = feature_inputs(c.shape);
    const FeatureResult ours = run_features<double>(impl, c, in);
    const auto differs = [&](const FeatureResult& other) {
      double worst = 0;
      for (const auto& [a, b] : {std::pair{&ours.out, &other.out}, std::pair{&ours.dq, &other.dq},
                                 std::pair{&ours.dsinks, &other.dsinks}}) {
        worst = std::max(worst, max_difference(*a, *b));
      }
      return worst;
    };
    FeatureCase wrong = c;
    wrong.sinks[1] += 0.1;
    EXPECT_GT(differs(reference(wrong, in)), 1e-3) << "sinks";
    wrong = c;
    wrong.softcap = 0.7;
    EXPECT_GT(differs(reference(wrong, in)), 1e-3) << "softcap";
    wrong = c;
    wrong.seed = 8;
    EXPECT_GT(differs(reference(wrong, in)), 1e-3) << "dropout seed";
    wrong = c;
    wrong.slopes[0] = 0.4;
    EXPECT_GT(differs(reference(wrong, in)), 1e-3) << "slopes";
    EXPECT_LT(differs(reference(c, in)), 1e-12);
  }
}

// The sink and the dropout mask change the results; dsinks is written, ALiBi bends the scores.
TEST(Version2, TheFeaturesReachTheKernel) {
  const AttentionImpl& impl =
      loaded_impl("ped_plugin_simple", "simple", {PluginLayout::contiguous, PluginLayout::strided});
  FeatureCase c{.name = "plain", .shape = {.batch = 1, .heads = 2, .seq_q = 4, .seq_k = 5, .head_dim = 3}, .mask = Mask::causal()};
  const FeatureInputs in = feature_inputs(c.shape);
  const FeatureResult plain = run_features<double>(impl, c, in);
  for (const auto& [name, with] : std::vector<std::pair<std::string, FeatureCase>>{
           {"sinks", [&] { FeatureCase x = c; x.sinks = {0.5, 0.5}; return x; }()},
           {"alibi", [&] { FeatureCase x = c; x.slopes = {1.0, 1.0}; return x; }()},
           {"softcap", [&] { FeatureCase x = c; x.softcap = 0.2; return x; }()},
           {"dropout", [&] { FeatureCase x = c; x.dropout_p = 0.5; x.seed = 3; return x; }()}}) {
    const FeatureResult r = run_features<double>(impl, with, in);
    EXPECT_GT(max_difference(r.out, plain.out), 1e-3) << name;
    for (double x : r.dsinks) EXPECT_TRUE(std::isfinite(x)) << name << " dsinks";
  }
}

TEST(Version2, AVersionOnePluginLoadsRunsAndIsRefusedFeatureCalls) {
  const LoadedPlugin p = load_attention_plugin(example("ped_plugin_simple_v1"),
                                               {.layouts = {PluginLayout::contiguous, PluginLayout::strided}});
  EXPECT_EQ(p.abi_version, 1u);
  EXPECT_TRUE(p.features.empty());
  EXPECT_NE(describe(p).find("ABI version 1, features none"), std::string::npos) << describe(p);
  const AttentionShape shape{.batch = 2, .heads = 2, .seq_q = 5, .seq_k = 6, .head_dim = 3};
  for (const std::string& variant : p.variants) {
    const AttentionImpl& impl = attention_impl(variant);
    EXPECT_EQ(impl.features, 0u) << variant;
    for (const Mask& mask : {Mask::causal(), Mask::bigbird(2, 1, 1, 1, 7)}) {
      const Result ours = run(impl, shape, mask), naive = run(attention_impl("naive"), shape, mask);
      EXPECT_LT(max_difference(ours.out, naive.out), 1e-13) << variant << " " << mask.name();
      EXPECT_LT(max_difference(ours.lse, naive.lse), 1e-13) << variant << " " << mask.name();
      EXPECT_LT(max_difference(ours.dq, naive.dq), 1e-13) << variant << " " << mask.name();
      EXPECT_LT(max_difference(ours.dk, naive.dk), 1e-13) << variant << " " << mask.name();
      EXPECT_LT(max_difference(ours.dv, naive.dv), 1e-13) << variant << " " << mask.name();
    }
  }
  const AttentionImpl& impl = attention_impl("simple_v1");
  for (const FeatureCase& c : feature_cases()) {
    const FeatureInputs in = feature_inputs(c.shape);
    const std::uint32_t used = c.features().used(c.shape);
    std::string first;
    for (std::size_t f = 0; f < kAttentionFeatureCount; ++f) {
      if (used & attention_feature_bit(static_cast<AttentionFeature>(f))) {
        first = to_string(static_cast<AttentionFeature>(f));
        break;
      }
    }
    expect_throw<std::invalid_argument>([&] { run_features<double>(impl, c, in); },
                                        {"attention_forward of 'simple_v1'", "the call uses the attention feature '" + first +
                                                                                 "', which this implementation does not support"});
  }
}

// The entry point gets the harness's version: to a harness speaking version 1 the simple plugin
// describes itself as version 1 without features, to this one as version 2.
TEST(Version2, TheEntryPointAnswersTheHarnessVersion) {
  void* handle = ::dlopen(example("ped_plugin_simple").c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << ::dlerror();
  void* symbol = ::dlsym(handle, PED_ATTENTION_PLUGIN_ENTRY);
  ASSERT_NE(symbol, nullptr);
  PedAttentionPluginEntryFn entry;
  std::memcpy(&entry, &symbol, sizeof entry);
  const PedAttentionPlugin* v1 = entry(1);
  EXPECT_EQ(v1->abi_version, 1u);
  EXPECT_EQ(v1->features, 0u);
  const PedAttentionPlugin* v2 = entry(PED_ATTENTION_PLUGIN_ABI_VERSION);
  EXPECT_EQ(v2->abi_version, 2u);
  EXPECT_EQ(v2->features, PED_FEATURE_GROUPED_QUERY_HEADS | PED_FEATURE_VARIABLE_LENGTH | PED_FEATURE_DROPOUT |
                              PED_FEATURE_ALIBI | PED_FEATURE_SOFTCAP | PED_FEATURE_SINKS);
  // the same kernel behind a version-1 description reads no version-2 field: a plain call of
  // version 1's struct_size, its memory beyond that poisoned, computes plain attention
  const AttentionShape s{.batch = 1, .heads = 1, .seq_q = 3, .seq_k = 3, .head_dim = 2};
  std::vector<double> q = {0.5, -0.25, 1.0, 0.75, -0.5, 0.125}, out(6), lse(3);
  HostTensor<double> tq({1, 1, 3, 2}, PluginLayout::contiguous, q.data()), tout({1, 1, 3, 2}, PluginLayout::contiguous, out.data());
  HostTensor<double> tlse({1, 1, 3}, PluginLayout::contiguous, lse.data());
  PedAttentionMask mask{};
  mask.struct_size = sizeof mask;
  mask.kind = PED_MASK_CAUSAL;
  PedAttentionForwardArgs args;
  std::memset(&args, 0xff, sizeof args);  // version-2 fields: garbage the kernel must not read
  args.struct_size = static_cast<std::uint32_t>(PED_ATTENTION_FORWARD_ARGS_V1_SIZE);
  args.threads = 1;
  args.scale = 1.0;
  args.q = args.k = args.v = tq.dl();
  args.mask = &mask;
  args.out = tout.dl();
  args.lse = tlse.dl();
  char error[256] = {};
  ASSERT_EQ(v1->forward(&args, error, sizeof error), 0) << error;
  std::vector<double> naive_out(6);
  std::vector<RowStatistic<double>> stats(3);
  run_forward<double>(attention_impl("naive"), s, Mask::causal(), 1.0, q.data(), q.data(), q.data(), naive_out.data(), stats.data());
  EXPECT_LT(max_difference(out, naive_out), 1e-14);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_NEAR(lse[i], stats[i].lse(), 1e-14);
}

// The harness passes each plugin its own version's struct_size and leaves the version-2 fields of
// undeclared features neutral (the plugins fail their calls otherwise).
TEST(Version2, EachPluginGetsItsVersionsStructsAndOnlyTheFieldsItDeclares) {
  const AttentionImpl& v1 = loaded_impl("ped_plugin_checks_args_v1", "checks_args_v1");
  const AttentionImpl& v2 = loaded_impl("ped_plugin_checks_args_v2", "checks_args_v2");
  EXPECT_EQ(v2.features, attention_feature_bit(AttentionFeature::grouped_query));
  const AttentionShape plain{.batch = 1, .heads = 2, .seq_q = 4, .seq_k = 5, .head_dim = 3};
  const AttentionShape grouped{.batch = 1, .heads = 4, .seq_q = 4, .seq_k = 5, .head_dim = 3, .heads_kv = 2};
  for (const FeatureCase& c : {FeatureCase{.name = "plain", .shape = plain, .mask = Mask::causal()},
                               FeatureCase{.name = "grouped", .shape = grouped, .mask = Mask::causal()}}) {
    const FeatureInputs in = feature_inputs(c.shape);
    const FeatureResult truth = reference(c, in);
    if (c.name == "plain") expect_close(run_features<double>(v1, c, in), truth, 1e-12, "checks_args_v1");
    expect_close(run_features<double>(v2, c, in), truth, 1e-12, "checks_args_v2 " + c.name);
  }
  FeatureCase sinks{.name = "sinks", .shape = plain, .mask = Mask::causal(), .sinks = {0.5, 0.5}};
  expect_throw<std::invalid_argument>([&] { run_features<double>(v2, sinks, feature_inputs(plain)); },
                                      {"'checks_args_v2'", "the attention feature 'sinks'"});
}

TEST(Version2, FeatureDeclarationsAVersionDoesNotDefineAreRefused) {
  expect_throw<std::invalid_argument>(
      [] { load_attention_plugin(example("ped_plugin_v1_with_features")); },
      {"plugin 'v1_with_features': features = 0x40 in an ABI version 1 description; version 1 defines no features"});
  expect_throw<std::invalid_argument>(
      [] { load_attention_plugin(example("ped_plugin_unknown_feature")); },
      {"plugin 'unknown_feature': features = 0x42 holds bit 1 (0x2, PED_FEATURE_ADDITIVE_BIAS, reserved), which ABI "
       "version 2 does not define"});
  EXPECT_EQ(find_attention_impl("v1_with_features"), nullptr);
  EXPECT_EQ(find_attention_impl("unknown_feature"), nullptr);
}

}  // namespace
}  // namespace ped::plugin
