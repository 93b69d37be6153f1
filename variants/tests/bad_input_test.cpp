// Bad input throws std::invalid_argument whose message names the function and the offending value.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>

#include "variants/attention.hpp"
#include "variants/blocked_attention.hpp"
#include "variants/flash_attention.hpp"
#include "variants/naive_attention.hpp"
#include "variants/sparse_attention.hpp"
#include "variants/tests/test_util.hpp"

namespace ped {
namespace {
using test::builtin_impls;

void expect_invalid(const std::function<void()>& f, const std::string& function, const std::string& detail) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected " << function << " to reject " << detail;
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(function), std::string::npos) << msg;
    EXPECT_NE(msg.find(detail), std::string::npos) << msg;
  }
}

struct Buffers {
  std::vector<float> q, k, v, out, dout, dq, dk, dv;
  std::vector<RowStats<float>> stats;
  explicit Buffers(std::size_t n)
      : q(n, 0.5f), k(n, 0.5f), v(n, 0.5f), out(n), dout(n, 1.0f), dq(n), dk(n), dv(n), stats(n) {}
};

const AttentionShape kShape{.batch = 1, .heads = 2, .seq_q = 8, .seq_k = 8, .head_dim = 4};

void fwd(const AttentionImpl& impl, Buffers& b, const AttentionShape& s = kShape, const Mask& m = Mask::causal(), float scale = 0.5f,
         const AttentionOptions& o = {}) {
  run_forward<float>(impl, s, m, scale, b.q.data(), b.k.data(), b.v.data(), b.out.data(), b.stats.data(), o);
}
void bwd(const AttentionImpl& impl, Buffers& b, const AttentionShape& s = kShape, const Mask& m = Mask::causal(), float scale = 0.5f,
         const AttentionOptions& o = {}) {
  run_backward<float>(impl, s, m, scale, b.q.data(), b.k.data(), b.v.data(), b.out.data(), b.stats.data(),
                            b.dout.data(), b.dq.data(), b.dk.data(), b.dv.data(), o);
}


TEST(BadInput, NullPointers) {
  Buffers b(64);
  for (const AttentionImpl* v : builtin_impls()) {
    const float* q = b.q.data();
    expect_invalid(
        [&] { run_forward<float>(*v, kShape, Mask::none(), 0.5f, nullptr, q, q, b.out.data(), b.stats.data()); },
        "attention_forward", "q is a null pointer");
    const RowStats<float>* st = b.stats.data();
    expect_invalid([&] { run_forward<float>(*v, kShape, Mask::none(), 0.5f, q, q, q, b.out.data(), nullptr); },
                   "attention_forward", "stats is a null pointer");
    expect_invalid([&] {
      run_backward<float>(*v, kShape, Mask::none(), 0.5f, q, q, q, q, st, q, b.dq.data(), nullptr, b.dv.data());
    }, "attention_backward", "dk is a null pointer");
    expect_invalid([&] {
      run_backward<float>(*v, kShape, Mask::none(), 0.5f, q, q, q, q, st, nullptr, b.dq.data(), b.dk.data(),
                                b.dv.data());
    }, "attention_backward", "dout is a null pointer");
    expect_invalid([&] {
      run_backward<float>(*v, kShape, Mask::none(), 0.5f, q, q, q, q, nullptr, q, b.dq.data(), b.dk.data(),
                                b.dv.data());
    }, "attention_backward", "stats is a null pointer");
  }
  expect_invalid([&] {
    flash_attention_forward<float>(kShape, Mask::none(), 0.5f, b.q.data(), nullptr, b.v.data(), b.out.data(),
                                   b.stats.data());
  }, "flash_attention_forward", "k is a null pointer");
  expect_invalid([&] {
    sparse_attention_backward<float>(kShape, Mask::none(), 0.5f, b.q.data(), b.k.data(), b.v.data(), nullptr,
                                     b.stats.data(), b.dout.data(), b.dq.data(), b.dk.data(), b.dv.data());
  }, "sparse_attention_backward", "out is a null pointer");
}

TEST(BadInput, LseFromStats) {
  std::vector<RowStats<float>> stats(4);
  std::vector<float> lse(4);
  expect_invalid([&] { lse_from_stats<float>(-1, stats.data(), lse.data()); }, "lse_from_stats", "rows = -1");
  expect_invalid([&] { lse_from_stats<float>(4, nullptr, lse.data()); }, "lse_from_stats", "stats is a null pointer");
  expect_invalid([&] { lse_from_stats<float>(4, stats.data(), nullptr); }, "lse_from_stats", "lse is a null pointer");
  stats[1] = {2.0f, 0.25f};
  lse_from_stats<float>(4, stats.data(), lse.data());
  EXPECT_TRUE(std::isinf(lse[0]) && lse[0] < 0);  // a row that sees no key
  EXPECT_FLOAT_EQ(lse[1], 2.0f + std::log(4.0f));
}

TEST(BadInput, NonPositiveSizes) {
  Buffers b(64);
  for (const AttentionImpl* v : builtin_impls()) {
    for (int field = 0; field < 5; ++field) {
      for (std::int64_t bad : {std::int64_t{0}, std::int64_t{-3}}) {
        AttentionShape s = kShape;
        const char* name = "";
        switch (field) {
          case 0: s.batch = bad; name = "batch"; break;
          case 1: s.heads = bad; name = "heads"; break;
          case 2: s.seq_q = bad; name = "seq_q"; break;
          case 3: s.seq_k = bad; name = "seq_k"; break;
          default: s.head_dim = bad; name = "head_dim"; break;
        }
        const std::string detail = std::string("shape.") + name + " = " + std::to_string(bad);
        expect_invalid([&] { fwd(*v, b, s); }, "attention_forward", detail);
        expect_invalid([&] { bwd(*v, b, s); }, "attention_backward", detail);
      }
    }
  }
  AttentionShape s = kShape;
  s.seq_k = 0;
  Buffers c(64);
  expect_invalid([&] {
    blocked_attention_forward<float>(s, Mask::none(), 0.5f, c.q.data(), c.k.data(), c.v.data(), c.out.data(),
                                     c.stats.data());
  }, "blocked_attention_forward", "shape.seq_k = 0");
}

TEST(BadInput, SizesWhoseProductOverflows) {
  Buffers b(64);
  const AttentionShape s{.batch = std::int64_t{1} << 31, .heads = std::int64_t{1} << 31, .seq_q = 4, .seq_k = 4, .head_dim = 4};
  for (const AttentionImpl* v : builtin_impls()) {
    expect_invalid([&] { fwd(*v, b, s); }, "attention_forward", "overflows");
    expect_invalid([&] { bwd(*v, b, s); }, "attention_backward", "batch = 2147483648");
  }
  AttentionShape too_long = kShape;
  too_long.seq_q = std::int64_t{1} << 33;  // beyond BLAS's int dimensions
  expect_invalid([&] { fwd(attention_impl("flash"), b, too_long); }, "attention_forward", "shape.seq_q = 8589934592");
}

TEST(BadInput, ScaleAndOptions) {
  Buffers b(64);
  for (const AttentionImpl* v : builtin_impls()) {
    expect_invalid([&] { fwd(*v, b, kShape, Mask::none(), std::numeric_limits<float>::quiet_NaN()); }, "attention_forward",
                   "scale = nan");
    expect_invalid([&] { bwd(*v, b, kShape, Mask::none(), std::numeric_limits<float>::infinity()); }, "attention_backward",
                   "scale = inf");
    expect_invalid([&] { fwd(*v, b, kShape, Mask::none(), 0.5f, {.threads = -1}); }, "attention_forward",
                   "options.threads = -1");
    expect_invalid([&] { fwd(*v, b, kShape, Mask::none(), 0.5f, {.tile_q = 5000}); }, "attention_forward",
                   "options.tile_q = 5000");
    expect_invalid([&] { bwd(*v, b, kShape, Mask::none(), 0.5f, {.tile_k = -2}); }, "attention_backward",
                   "options.tile_k = -2");
    expect_invalid([&] { fwd(*v, b, kShape, Mask::none(), 0.5f, {.block_size = 0}); }, "attention_forward",
                   "options.block_size = 0");
  }
  expect_invalid([&] {
    attention_forward<float>(static_cast<Variant>(9), kShape, Mask::causal(), 0.5f, b.q.data(), b.k.data(), b.v.data(),
                             b.out.data(), b.stats.data());
  }, "attention_forward", "variant = 9");
}

TEST(BadInput, MaskParametersOutOfRange) {
  expect_invalid([] { Mask::sliding_window(-1, 0); }, "Mask::sliding_window", "left = -1");
  expect_invalid([] { Mask::sliding_window(0, -4); }, "Mask::sliding_window", "right = -4");
  expect_invalid([] { Mask::causal_sliding_window(-2); }, "Mask::causal_sliding_window", "left = -2");
  expect_invalid([] { Mask::strided(0); }, "Mask::strided", "stride = 0");
  expect_invalid([] { Mask::fixed(4, 5); }, "Mask::fixed", "summary = 5");
  expect_invalid([] { Mask::fixed(-1, 0); }, "Mask::fixed", "stride = -1");
  expect_invalid([] { Mask::global_tokens(0); }, "Mask::global_tokens", "count = 0");
  expect_invalid([] { Mask::longformer(2, 2, 0); }, "Mask::longformer", "global_count = 0");
  expect_invalid([] { Mask::bigbird(0, 1, 1, 1, 0); }, "Mask::bigbird", "block = 0");
  expect_invalid([] { Mask::bigbird(8, -1, 1, 1, 0); }, "Mask::bigbird", "window_radius = -1");
  expect_invalid([] { Mask::bigbird(8, 1, 1, -1, 0); }, "Mask::bigbird", "random_blocks = -1");
  expect_invalid([] { Mask::explicit_blocks(0, 4, 2, 2, std::vector<std::uint8_t>(4, 1)); }, "Mask::explicit_blocks",
                 "block_q = 0");
  expect_invalid([] { Mask::explicit_blocks(4, 4, 2, 2, std::vector<std::uint8_t>(3, 1)); }, "Mask::explicit_blocks",
                 "visible_blocks has 3 entries");
  expect_invalid([] { Mask::intersection(std::vector<Mask>{}); }, "Mask::intersection", "at least one");
  expect_invalid([] { Mask::union_of(std::vector<Mask>{}); }, "Mask::union_of", "at least one");
  expect_invalid([] { Mask::causal().block_layout(8, 8, 0, 4); }, "Mask::block_layout", "block_q = 0");
  expect_invalid([] { Mask::causal().block_layout(8, -1, 4, 4); }, "Mask::block_layout", "seq_k = -1");
}

TEST(BadInput, ExplicitLayoutOfTheWrongSize) {
  Buffers b(64);
  // 8 x 8 scores in blocks of 4 need a 2 x 2 layout; 3 x 2 is wrong, also inside a combination.
  const Mask wrong = Mask::explicit_blocks(4, 4, 3, 2, std::vector<std::uint8_t>(6, 1));
  for (const AttentionImpl* v : builtin_impls()) {
    expect_invalid([&] { fwd(*v, b, kShape, wrong); }, "attention_forward", "(3 x 2) blocks");
    expect_invalid([&] { bwd(*v, b, kShape, Mask::causal() & wrong); }, "attention_backward", "need (2 x 2) blocks");
  }
  expect_invalid([&] { wrong.block_layout(8, 8, 4, 4); }, "Mask::block_layout", "seq_q = 8");
}

}  // namespace
TEST(BadInput, VariantNames) {
  for (Variant v : {Variant::naive, Variant::blocked, Variant::flash, Variant::sparse}) {
    EXPECT_EQ(parse_variant(to_string(v)), v);
  }
  try {
    parse_variant("flashy");
    ADD_FAILURE() << "no exception for an unknown variant";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("parse_variant"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'flashy'"), std::string::npos) << e.what();
  }
}

}  // namespace ped
