// The key/value cache of text generation: Gpt::decode_step gives the logits the full forward gives
// for the same tokens, and gpt_generate draws the same tokens with and without the cache.
//
// Tolerance: the two paths round differently (decode_step's scores are dot products and its head
// outputs matrix-vector products; the full forward's are matrix-matrix products, and its softmax's exp
// is the attention kernels' polynomial, decode_step's std::exp), so the logits agree to a few units in
// the last place of the activations, not bitwise: |diff| <= 1e-5 (1 + max |z|) in float, 1e-13 (1 +
// max |z|) in double, with weights of standard deviation 0.5 (logits of order 1-10); measured at most
// 2.2e-6 and 3.8e-15.
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>

#include "reference/gpt.hpp"

namespace ped::ref {
namespace {

GptConfig config(const Mask& mask, GeluApprox approx, arma::uword lora_rank = 0) {
  return {.vocab = 11, .context = 12, .width = 16, .heads = 2, .layers = 2, .ffn = 24, .lora_rank = lora_rank,
          .lora_targets = lora_q | lora_v | lora_mlp, .mask = mask, .approx = approx, .init_std = 0.5, .threads = 1};
}

TokenIds tokens(std::size_t n, std::int64_t vocab, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> pick(0, vocab - 1);
  TokenIds ids(n);
  for (auto& t : ids) t = pick(rng);
  return ids;
}

template <class T>
void expect_decode_matches_forward(const GptConfig& cfg, double tolerance) {
  Gpt<T> model(cfg, 7);
  if (cfg.lora_rank > 0) {  // adapters that change the output (B starts at zero)
    std::mt19937_64 rng(3);
    std::normal_distribution<double> normal(0.0, 0.3);
    for (const GptEntry& e : model.layout().entries) {
      if (e.name.ends_with(".lora_b")) {
        for (std::size_t i = 0; i < e.size(); ++i) model.params().data()[e.offset + i] = static_cast<T>(normal(rng));
      }
    }
  }
  const TokenIds ids = tokens(cfg.context, static_cast<std::int64_t>(cfg.vocab), 5);
  GptDecodeState<T> state;
  for (std::size_t m = 1; m <= ids.size(); ++m) {
    const Col<T> cached = model.decode_step(ids[m - 1], state);
    const Mat<T> full = model.logits(TokenIds(ids.begin(), ids.begin() + static_cast<long>(m)), 1);
    ASSERT_EQ(cached.n_elem, cfg.vocab);
    const double scale = 1.0 + static_cast<double>(arma::abs(full.col(m - 1)).max());
    const double diff = static_cast<double>(arma::abs(cached - full.col(m - 1)).max());
    EXPECT_LE(diff, tolerance * scale) << "position " << m - 1 << ", mask " << cfg.mask.name() << ", gelu "
                                       << to_string(cfg.approx) << ", lora rank " << cfg.lora_rank;
  }
  EXPECT_EQ(state.length, cfg.context);
}

TEST(GptDecode, CachedLogitsMatchTheFullForward) {
  for (const Mask& mask : {Mask::causal(), Mask::causal_sliding_window(3)}) {
    for (const GeluApprox approx : {GeluApprox::tanh, GeluApprox::erf}) {
      expect_decode_matches_forward<float>(config(mask, approx), 1e-5);
      expect_decode_matches_forward<double>(config(mask, approx), 1e-13);
    }
  }
  expect_decode_matches_forward<float>(config(Mask::causal(), GeluApprox::tanh, 2), 1e-5);
  expect_decode_matches_forward<double>(config(Mask::causal(), GeluApprox::tanh, 2), 1e-13);
  GptConfig flash = config(Mask::causal(), GeluApprox::tanh);
  flash.attention = "flash";
  expect_decode_matches_forward<float>(flash, 1e-5);
}

TEST(GptDecode, CachedAndFullSamplingDrawTheSameTokens) {
  for (const Mask& mask : {Mask::causal(), Mask::causal_sliding_window(3)}) {
    const Gpt<float> model(config(mask, GeluApprox::tanh), 11);
    const TokenIds prompt = tokens(5, 11, 9);
    std::mt19937_64 a(42), b(42);
    // 40 tokens with a context of 12: the window restarts from its last 6 tokens several times
    const TokenIds cached = gpt_generate(model, prompt, 40, 0.8, a, true);
    const TokenIds full = gpt_generate(model, prompt, 40, 0.8, b, false);
    EXPECT_EQ(cached, full) << mask.name();
    EXPECT_EQ(cached.size(), 45u);
    EXPECT_TRUE(std::equal(prompt.begin(), prompt.end(), cached.begin()));
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(GptDecode, RefusesAFullContextABadTokenAndALengthDependentMask) {
  const Gpt<float> model(config(Mask::causal(), GeluApprox::tanh), 1);
  GptDecodeState<float> state;
  EXPECT_NE(error_of([&] { model.decode_step(11, state); }).find("Gpt::decode_step: token 11 is outside the vocabulary [0, 11)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { model.decode_step(-1, state); }).find("token -1"), std::string::npos);
  for (int i = 0; i < 12; ++i) model.decode_step(1, state);
  EXPECT_NE(error_of([&] { model.decode_step(1, state); }).find("the state holds 12 tokens, the context T = 12 is full"),
            std::string::npos);
  const Gpt<float> bidirectional(config(Mask::none(), GeluApprox::tanh), 1);
  GptDecodeState<float> fresh;
  EXPECT_NE(error_of([&] { bidirectional.decode_step(1, fresh); }).find("a key/value cache needs rows that do not depend on the length"),
            std::string::npos);
  std::mt19937_64 rng(1);
  EXPECT_NE(error_of([&] { gpt_generate(model, {}, 3, 1.0, rng, true); }).find("gpt_generate: empty prompt"), std::string::npos);
  EXPECT_NE(error_of([&] { gpt_generate(model, TokenIds(13, 1), 3, 1.0, rng, true); }).find("prompt of 13 tokens exceeds the context T = 12"),
            std::string::npos);
  EXPECT_NE(error_of([&] { gpt_generate(model, {1}, 3, 0.0, rng, false); }).find("temperature = 0, expected > 0"), std::string::npos);
}

}  // namespace
}  // namespace ped::ref
