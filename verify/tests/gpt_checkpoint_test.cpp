// Checkpoints: a save / load round trip resumes training bit-identically; a truncated, corrupted or
// foreign file is rejected with a message that says which.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "reference/checkpoint.hpp"
#include "verify/problem.hpp"

namespace ped::verify {
namespace {

ref::GptConfig config() { return {.vocab = 11, .context = 8, .width = 16, .heads = 4, .layers = 2, .ffn = 24, .threads = 1}; }

template <class T>
void train(ref::Gpt<T>& model, ref::AdamW<T>& opt, int first_step, int steps) {
  ref::GptTensors<T> g(model.layout());
  for (int s = first_step; s < first_step + steps; ++s) {
    Rng rng(static_cast<std::uint64_t>(s));
    const ref::TokenIds tokens = rng.integers(2 * 8, 0, 11);
    ref::TokenIds targets = rng.integers(2 * 8, 0, 11);
    ref::GptCache<T> cache;
    model.forward(tokens, targets, 2, cache);
    model.backward(cache, g);
    opt.step(model.params(), g);
  }
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("pedestrian_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::vector<char> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_all(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <class T>
void round_trip_resumes_bit_identically() {
  const std::string path = temp_path("resume.ckpt");
  ref::Gpt<T> model(config(), 1);
  ref::AdamW<T> opt(model.layout(), {.lr = 3e-3});
  train(model, opt, 0, 5);
  ref::save_checkpoint(path, model, opt);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid()))) << "temporary file left behind";
  train(model, opt, 5, 5);

  ref::Gpt<T> resumed(config(), 999);  // another initialisation: everything must come from the file
  ref::AdamW<T> resumed_opt(resumed.layout(), {.lr = 3e-3});
  ref::load_checkpoint(path, resumed, resumed_opt);
  EXPECT_EQ(resumed_opt.steps(), 5);
  train(resumed, resumed_opt, 5, 5);
  const std::size_t bytes = model.params().data().size() * sizeof(T);
  EXPECT_EQ(std::memcmp(model.params().data().data(), resumed.params().data().data(), bytes), 0);
  EXPECT_EQ(std::memcmp(opt.m().data().data(), resumed_opt.m().data().data(), bytes), 0);
  EXPECT_EQ(std::memcmp(opt.v().data().data(), resumed_opt.v().data().data(), bytes), 0);
  EXPECT_EQ(opt.steps(), resumed_opt.steps());
  std::filesystem::remove(path);
}

TEST(GptCheckpoint, RoundTripResumesBitIdentically) {
  round_trip_resumes_bit_identically<double>();
  round_trip_resumes_bit_identically<float>();
}

// The message of the exception `load` throws, or "" if it throws none.
template <class E>
std::string error_of(const std::string& path, const ref::GptConfig& cfg = config()) {
  ref::Gpt<double> model(cfg, 2);
  ref::AdamW<double> opt(model.layout(), {});
  const std::vector<double> before = model.params().data();
  try {
    ref::load_checkpoint(path, model, opt);
  } catch (const E& e) {
    EXPECT_EQ(model.params().data(), before) << "a rejected file modified the model";
    return e.what();
  }
  return "";
}

TEST(GptCheckpoint, RejectsTruncatedCorruptedAndForeignFiles) {
  const std::string good = temp_path("good.ckpt"), bad = temp_path("bad.ckpt");
  ref::Gpt<double> model(config(), 1);
  ref::AdamW<double> opt(model.layout(), {});
  train(model, opt, 0, 2);
  ref::save_checkpoint(good, model, opt);
  const std::vector<char> bytes = read_all(good);

  write_all(bad, std::vector<char>(bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() / 2)));
  EXPECT_NE(error_of<std::runtime_error>(bad).find("truncated"), std::string::npos);
  write_all(bad, std::vector<char>(bytes.begin(), bytes.begin() + 20));
  EXPECT_NE(error_of<std::runtime_error>(bad).find("truncated"), std::string::npos);

  std::vector<char> flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x10;  // one bit in the payload
  write_all(bad, flipped);
  EXPECT_NE(error_of<std::runtime_error>(bad).find("checksum"), std::string::npos);

  std::vector<char> longer = bytes;
  longer.push_back('x');
  write_all(bad, longer);
  EXPECT_NE(error_of<std::runtime_error>(bad).find("trailing"), std::string::npos);

  std::vector<char> magic = bytes;
  magic[0] = 'X';
  write_all(bad, magic);
  EXPECT_NE(error_of<std::runtime_error>(bad).find("magic"), std::string::npos);

  ref::GptConfig other = config();
  other.width = 8;
  EXPECT_NE(error_of<std::invalid_argument>(good, other).find("width"), std::string::npos);
  EXPECT_NE(error_of<std::runtime_error>(temp_path("missing.ckpt")).find("cannot be opened"), std::string::npos);

  ref::Gpt<float> as_float(config(), 1);
  ref::AdamW<float> float_opt(as_float.layout(), {});
  EXPECT_THROW(ref::load_checkpoint(good, as_float, float_opt), std::runtime_error);
  std::filesystem::remove(good);
  std::filesystem::remove(bad);
}

TEST(GptCheckpoint, Fnv1a64KnownValues) {
  EXPECT_EQ(ref::fnv1a64("", 0), 0xcbf29ce484222325ULL);
  EXPECT_EQ(ref::fnv1a64("a", 1), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(ref::fnv1a64("foobar", 6), 0x85944171f73967e8ULL);
}

}  // namespace
}  // namespace ped::verify
