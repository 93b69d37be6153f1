// The registry of attention implementations: the built-ins register in order under the Variant
// names, calls through it are the kernels' own calls with attention_forward's checks, and bad
// registrations and unsupported calls are refused with a message naming the value.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "variants/registry.hpp"

namespace ped {
namespace {

void expect_invalid(const std::function<void()>& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    for (const std::string& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

const Variant kBuiltins[] = {Variant::naive, Variant::blocked, Variant::flash, Variant::sparse};

TEST(Registry, TheBuiltinsComeFirstUnderTheirVariantNames) {
  const std::vector<std::string> names = attention_impl_names();
  ASSERT_GE(names.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(names[i], to_string(kBuiltins[i]));
  for (const AttentionImpl& impl : builtin_attention_impls()) {
    EXPECT_EQ(impl.origin, "built-in");
    EXPECT_FALSE(impl.isolate);
    EXPECT_TRUE(impl.supports<float>() && impl.supports<double>()) << impl.name;
    // The four Variant kernels have a backward; flash_decode (inference) is forward only.
    const bool forward_only = impl.name == "flash_decode";
    EXPECT_EQ(impl.has_backward<float>() && impl.has_backward<double>(), !forward_only) << impl.name;
    EXPECT_EQ(impl.has_backward<float>() || impl.has_backward<double>(), !forward_only) << impl.name;
    EXPECT_EQ(impl.mask_kinds, kAllMaskKinds) << impl.name;
    ASSERT_TRUE(impl.working_bytes) << impl.name;
    EXPECT_GT(impl.working_bytes({.seq_q = 256, .seq_k = 256, .head_dim = 64}, 4, 2, true), 0.0) << impl.name;
  }
  EXPECT_EQ(&attention_impl("flash"), find_attention_impl("flash"));
  EXPECT_EQ(find_attention_impl("no_such_kernel"), nullptr);
  expect_invalid([] { attention_impl("no_such_kernel"); },
                 {"attention_impl", "'no_such_kernel'", "naive, blocked, flash, sparse"});
}

template <class T>
void expect_same_as_variant(Variant v, const AttentionShape& shape, const Mask& mask) {
  const test::Problem<T> p = test::make_problem<T>(shape, test::kSeed);
  // The kernel's own call, through the Variant enum of attention.hpp.
  test::Result<T> direct;
  direct.out.resize(p.q.size());
  direct.stats.resize(static_cast<std::size_t>(shape.batch * shape.heads * shape.seq_q));
  direct.dq.resize(p.q.size());
  direct.dk.resize(p.k.size());
  direct.dv.resize(p.v.size());
  attention_forward<T>(v, shape, mask, p.scale, p.q.data(), p.k.data(), p.v.data(), direct.out.data(),
                       direct.stats.data());
  attention_backward<T>(v, shape, mask, p.scale, p.q.data(), p.k.data(), p.v.data(), direct.out.data(),
                        direct.stats.data(), p.dout.data(), direct.dq.data(), direct.dk.data(), direct.dv.data());
  const AttentionImpl& impl = attention_impl(to_string(v));
  std::vector<T> out(direct.out.size()), dq(direct.dq.size()), dk(direct.dk.size()), dv(direct.dv.size());
  std::vector<RowStatistic<T>> stats(direct.stats.size());
  run_forward<T>(impl, shape, mask, p.scale, p.q.data(), p.k.data(), p.v.data(), out.data(), stats.data());
  run_backward<T>(impl, shape, mask, p.scale, p.q.data(), p.k.data(), p.v.data(), out.data(), stats.data(),
                  p.dout.data(), dq.data(), dk.data(), dv.data());
  auto bitwise = [](const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
  };
  EXPECT_TRUE(bitwise(out, direct.out)) << impl.name << " " << mask.name();
  auto same_stats = [](const std::vector<RowStatistic<T>>& a, const std::vector<RowStatistic<T>>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
  };
  EXPECT_TRUE(same_stats(stats, direct.stats)) << impl.name << " " << mask.name();
  EXPECT_TRUE(bitwise(dq, direct.dq)) << impl.name << " " << mask.name();
  EXPECT_TRUE(bitwise(dk, direct.dk)) << impl.name << " " << mask.name();
  EXPECT_TRUE(bitwise(dv, direct.dv)) << impl.name << " " << mask.name();
}

TEST(Registry, CallsAreTheKernelsOwnCalls) {
  const AttentionShape shape{.batch = 2, .heads = 2, .seq_q = 70, .seq_k = 90, .head_dim = 16};
  for (Variant v : kBuiltins) {
    for (const Mask& mask : {Mask::none(), Mask::causal(), Mask::bigbird(8, 1, 1, 1, 3)}) {
      expect_same_as_variant<float>(v, shape, mask);
      expect_same_as_variant<double>(v, shape, mask);
    }
  }
}

TEST(Registry, CallsAreCheckedLikeAttentionForward) {
  const AttentionShape shape{.batch = 1, .heads = 1, .seq_q = 4, .seq_k = 4, .head_dim = 2};
  std::vector<float> x(8, 0.5f);
  std::vector<RowStatistic<float>> lse(4);
  const AttentionImpl& flash = attention_impl("flash");
  expect_invalid([&] { run_forward<float>(flash, shape, Mask::none(), 1.0f, nullptr, x.data(), x.data(), x.data(), lse.data()); },
                 {"attention_forward", "q is a null pointer"});
  expect_invalid([&] {
    run_forward<float>(flash, {.seq_q = 0}, Mask::none(), 1.0f, x.data(), x.data(), x.data(), x.data(), lse.data());
  }, {"attention_forward", "shape.seq_q = 0"});
  expect_invalid([&] {
    run_backward<float>(flash, shape, Mask::none(), 1.0f, x.data(), x.data(), x.data(), x.data(), lse.data(), x.data(),
                        x.data(), nullptr, x.data());
  }, {"attention_backward", "dk is a null pointer"});
}

AttentionImpl forward_only_causal(const std::string& name) {
  AttentionImpl impl;
  impl.name = name;
  impl.origin = "registry_test";
  impl.mask_kinds = mask_kind_bit(Mask::Kind::causal);
  impl.forward_f32 = [](const AttentionShape&, const Mask&, float, const float*, const float*, const float*, float*,
                        RowStatistic<float>*, const AttentionOptions&) {};
  return impl;
}

TEST(Registry, BadRegistrationsAreRefused) {
  for (const char* bad : {"", "Flash", "9lives", "a-b", "name[Strided]", "name[]", "name[strided"}) {
    expect_invalid([&] { register_attention_impl(forward_only_causal(bad)); },
                   {"register_attention_impl", std::string("'") + bad + "'"});
  }
  expect_invalid([] { register_attention_impl(forward_only_causal(std::string(49, 'a'))); },
                 {"register_attention_impl", "at most 48 characters"});
  expect_invalid([] { register_attention_impl(forward_only_causal("flash")); },
                 {"'flash' is already registered (from built-in)"});
  expect_invalid([] { register_attention_impl(forward_only_causal("libtorch_mine")); },
                 {"'libtorch_mine' starts with 'libtorch'"});
  AttentionImpl none = forward_only_causal("registry_test_no_forward");
  none.forward_f32 = nullptr;
  expect_invalid([&] { register_attention_impl(none); }, {"'registry_test_no_forward' has no forward"});
  AttentionImpl backward_only = forward_only_causal("registry_test_backward_only");
  backward_only.backward_f64 = attention_impl("flash").backward_f64;
  expect_invalid([&] { register_attention_impl(backward_only); }, {"a backward for a dtype without a forward"});
  AttentionImpl no_masks = forward_only_causal("registry_test_no_masks");
  no_masks.mask_kinds = 0;
  expect_invalid([&] { register_attention_impl(no_masks); }, {"accepts no mask kind"});
  EXPECT_EQ(find_attention_impl("registry_test_no_forward"), nullptr);
}

TEST(Registry, ARegisteredImplementationIsCalledOnlyForWhatItHas) {
  register_attention_impl(forward_only_causal("registry_test_forward_only"));
  register_attention_impl(forward_only_causal("registry_test_forward_only[strided]"));
  const std::vector<std::string> names = attention_impl_names();
  EXPECT_EQ(names[names.size() - 2], "registry_test_forward_only");
  EXPECT_EQ(names.back(), "registry_test_forward_only[strided]");
  const AttentionImpl& impl = attention_impl("registry_test_forward_only");
  const AttentionShape shape{.batch = 1, .heads = 1, .seq_q = 4, .seq_k = 4, .head_dim = 2};
  std::vector<float> x(8, 0.5f);
  std::vector<RowStatistic<float>> lse(4);
  std::vector<double> y(8, 0.5);
  std::vector<RowStatistic<double>> lse_d(4);
  EXPECT_NO_THROW(run_forward<float>(impl, shape, Mask::causal(), 1.0f, x.data(), x.data(), x.data(), x.data(), lse.data()));
  expect_invalid([&] { run_forward<double>(impl, shape, Mask::causal(), 1.0, y.data(), y.data(), y.data(), y.data(), lse_d.data()); },
                 {"attention_forward", "'registry_test_forward_only' has no double kernel"});
  expect_invalid([&] { run_forward<float>(impl, shape, Mask::none(), 1.0f, x.data(), x.data(), x.data(), x.data(), lse.data()); },
                 {"attention_forward", "'registry_test_forward_only' does not accept mask none"});
  expect_invalid([&] {
    run_backward<float>(impl, shape, Mask::causal(), 1.0f, x.data(), x.data(), x.data(), x.data(), lse.data(), x.data(),
                        x.data(), x.data(), x.data());
  }, {"attention_backward", "'registry_test_forward_only' has no float backward"});
}

}  // namespace
}  // namespace ped
