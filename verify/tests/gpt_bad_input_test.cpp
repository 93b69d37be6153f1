// Bad input to the GPT, its optimizer and its parsers: std::invalid_argument naming the function and
// the offending values.
#include <gtest/gtest.h>

#include "reference/adamw.hpp"
#include "reference/gpt.hpp"

namespace ped::verify {
namespace {

// Expects std::invalid_argument whose message contains every one of `parts`.
template <class Fn>
void expect_invalid(Fn fn, std::initializer_list<const char*> parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    for (const char* p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << " lacks " << p;
  }
}

ref::GptConfig ok() { return {.vocab = 5, .context = 4, .width = 8, .heads = 2, .layers = 1, .ffn = 8}; }

TEST(GptBadInput, Configuration) {
  auto with = [](auto edit) {
    ref::GptConfig c = ok();
    edit(c);
    return [c] { ref::Gpt<double>(c, 1); };
  };
  expect_invalid(with([](auto& c) { c.heads = 3; }), {"gpt_layout", "heads = 3", "width D = 8"});
  expect_invalid(with([](auto& c) { c.vocab = 0; }), {"gpt_layout", "vocab = 0"});
  expect_invalid(with([](auto& c) { c.context = 0; }), {"context = 0"});
  expect_invalid(with([](auto& c) { c.layers = 0; }), {"layers = 0"});
  expect_invalid(with([](auto& c) { c.lora_rank = 9; }), {"lora_rank = 9", "8"});
  expect_invalid(with([](auto& c) { c.lora_rank = 2; c.lora_targets = 0; }), {"lora_rank = 2", "no LoRA target"});
  expect_invalid(with([](auto& c) { c.eps = 0; }), {"eps = 0"});
  expect_invalid([] { ref::parse_lora_targets("q,x"); }, {"parse_lora_targets", "'x'"});
  expect_invalid([] { ref::parse_gpt_attention("fast"); },
                 {"parse_gpt_attention", "'fast'", "reference, naive, blocked, flash, sparse"});
  expect_invalid(with([](auto& c) { c.attention = "fast"; }), {"gpt_layout", "attention", "'fast'"});
  expect_invalid([] { ref::AdamW<double>(ref::gpt_layout(ok()), {.beta1 = 1.0}); }, {"AdamW", "beta1 = 1"});
  expect_invalid([] { ref::Gpt<double>(ok(), std::vector<double>(3)); }, {"Gpt::Gpt", "3 parameter values"});
}

TEST(GptBadInput, Batches) {
  const ref::Gpt<double> m(ok(), 1);
  ref::GptCache<double> c;
  const ref::TokenIds five = {0, 1, 2, 3, 4};
  expect_invalid([&] { m.forward(five, five, 1, c); }, {"Gpt::forward", "N = 5", "T = 4"});
  expect_invalid([&] { m.forward({}, {}, 1, c); }, {"Gpt::forward", "no input tokens"});
  expect_invalid([&] { m.forward(five, five, 2, c); }, {"5 input tokens", "batch = 2"});
  expect_invalid([&] { m.forward({0, 1, 2, 3}, {0, 1, 2, 3}, 0, c); }, {"batch = 0"});
  expect_invalid([&] { m.forward({0, 7}, {0, 1}, 1, c); }, {"input token 7", "[0, 5)"});
  expect_invalid([&] { m.forward({0, 1}, {0, -3}, 1, c); }, {"target -3"});
  expect_invalid([&] { m.forward({0, 1}, {0}, 1, c); }, {"1 targets for 2 input tokens"});
  expect_invalid([&] { m.logits({0, 1, 2, 3, 4}, 1); }, {"Gpt::logits", "N = 5"});
  ref::Gpt<double> lora_less(ok(), 1);
  expect_invalid([&] { lora_less.unmerge_lora(); }, {"Gpt::unmerge_lora"});
}

}  // namespace
}  // namespace ped::verify
