// The GPT's configuration limits: a size past kGptMaxSize (such as a negative option read into an
// unsigned size) or a parameter count past kGptMaxParameters is refused with std::invalid_argument
// naming the field, before anything is allocated.
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>

#include "reference/gpt.hpp"

namespace ped::ref {
namespace {

GptConfig small() { return {.vocab = 5, .context = 4, .width = 8, .heads = 2, .layers = 1, .ffn = 8, .threads = 1}; }

// The message of the std::invalid_argument that constructing a model of cfg throws ("" if none).
std::string construction_error(const GptConfig& cfg) {
  try {
    Gpt<float> model(cfg, 1);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

constexpr arma::uword kMinusOne = std::numeric_limits<arma::uword>::max();  // "-1" read as unsigned

TEST(GptConfigLimits, ASizeAboveTheLimitIsRefusedByName) {
  const std::pair<const char*, std::function<void(GptConfig&, arma::uword)>> fields[] = {
      {"vocab", [](GptConfig& c, arma::uword v) { c.vocab = v; }},
      {"context", [](GptConfig& c, arma::uword v) { c.context = v; }},
      {"width", [](GptConfig& c, arma::uword v) { c.width = v; }},
      {"heads", [](GptConfig& c, arma::uword v) { c.heads = v; }},
      {"layers", [](GptConfig& c, arma::uword v) { c.layers = v; }},
      {"ffn", [](GptConfig& c, arma::uword v) { c.ffn = v; }},
      {"lora_rank", [](GptConfig& c, arma::uword v) { c.lora_rank = v; }},
  };
  for (const auto& [name, set] : fields) {
    for (const arma::uword value : {kMinusOne, kGptMaxSize + 1}) {
      GptConfig cfg = small();
      set(cfg, value);
      const std::string expected = std::string("gpt_layout: ") + name + " = " + std::to_string(value) +
                                   ", expected <= " + std::to_string(kGptMaxSize);
      EXPECT_EQ(construction_error(cfg), expected);
    }
  }
}

TEST(GptConfigLimits, AParameterCountAboveTheLimitIsRefusedNamingTheSizes) {
  GptConfig wide = small();
  wide.width = wide.ffn = kGptMaxSize;  // 4 D^2 + 2 F D alone is 6 * 2^48
  const std::string error = construction_error(wide);
  EXPECT_NE(error.find("gpt_layout: vocab = 5, context = 4, width = 16777216, layers = 1, ffn = 16777216"), std::string::npos)
      << error;
  EXPECT_NE(error.find("parameters, expected <= 4294967296"), std::string::npos) << error;

  GptConfig deep = small();
  deep.layers = kGptMaxSize;  // 16.7 M blocks of 432 parameters
  EXPECT_NE(construction_error(deep).find("layers = 16777216"), std::string::npos);
  GptConfig long_context = small();
  long_context.vocab = long_context.context = kGptMaxSize;
  long_context.width = 512;
  EXPECT_NE(construction_error(long_context).find("parameters, expected <= 4294967296"), std::string::npos);
}

TEST(GptConfigLimits, SizesWithinTheLimitsStillBuild) {
  EXPECT_EQ(construction_error(small()), "");
  GptConfig at_limit = small();
  at_limit.vocab = kGptMaxSize;  // 2^24 x 8 embedding: 2^27 parameters, below 2^32
  at_limit.width = 8;
  EXPECT_EQ(gpt_layout(at_limit).entries.front().size(), std::size_t{8} << 24);
}

}  // namespace
}  // namespace ped::ref
