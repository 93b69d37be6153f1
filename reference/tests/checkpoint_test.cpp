// Checkpoint files: every single-byte corruption, every truncation and an appended byte are refused
// with an error naming the file; a directory is refused by name; save makes its bytes durable (fsync)
// before the rename that publishes them, then syncs the directory.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "reference/checkpoint.hpp"
#include "reference/tests/file_syscall_log.hpp"

namespace ped::ref {
namespace {

namespace fs = std::filesystem;

// The smallest model there is: a checkpoint of 1,528 bytes, so that every byte can be tried.
GptConfig tiny() { return {.vocab = 3, .context = 2, .width = 2, .heads = 1, .layers = 1, .ffn = 2, .threads = 1}; }

class CheckpointFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::canonical(fs::temp_directory_path()) /
           ("pedestrian_checkpoint_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<char> saved_bytes() {
    Gpt<double> model(tiny(), 1);
    AdamW<double> opt(model.layout(), {});
    GptTensors<double> grads(model.layout());
    grads.data().assign(grads.data().size(), 0.25);  // moments that are not zero
    opt.step(model.params(), grads);
    const std::string path = (dir_ / "good.ckpt").string();
    save_checkpoint(path, model, opt);
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  }

  // The message of the std::runtime_error that loading `bytes` throws ("" when it loads), and
  // whether the model stayed as it was.
  std::string load_error(const std::vector<char>& bytes, bool& untouched) {
    const std::string path = (dir_ / "bad.ckpt").string();
    {
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    Gpt<double> model(tiny(), 2);
    AdamW<double> opt(model.layout(), {});
    const std::vector<double> before = model.params().data();
    std::string error;
    try {
      load_checkpoint(path, model, opt);
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
    untouched = model.params().data() == before && opt.steps() == 0;
    return error;
  }

  // Refused with a message that names the file and says what is wrong.
  void expect_refused(const std::vector<char>& bytes, const std::string& what) {
    bool untouched = false;
    const std::string error = load_error(bytes, untouched);
    EXPECT_NE(error.find("load_checkpoint: '" + (dir_ / "bad.ckpt").string() + "'"), std::string::npos)
        << what << ": " << (error.empty() ? "loaded without complaint" : error);
    const bool says_why = error.find("bad magic") != std::string::npos || error.find("format version") != std::string::npos ||
                          error.find("-byte scalars") != std::string::npos || error.find("truncated") != std::string::npos ||
                          error.find("trailing bytes") != std::string::npos || error.find("checksum") != std::string::npos ||
                          error.find("step count") != std::string::npos;
    EXPECT_TRUE(says_why) << what << ": " << error;
    EXPECT_TRUE(untouched) << what << ": a refused file modified the model";
  }

  fs::path dir_;
};

TEST_F(CheckpointFile, TheUntouchedFileLoads) {
  bool untouched = true;
  EXPECT_EQ(load_error(saved_bytes(), untouched), "");
  EXPECT_FALSE(untouched);  // it did load: the parameters and the step count changed
}

TEST_F(CheckpointFile, FirstAndLastByteCorruptionIsRefused) {
  const std::vector<char> good = saved_bytes();
  for (const unsigned char bit : {0x01, 0x80}) {
    std::vector<char> first = good, last = good;
    first.front() = static_cast<char>(first.front() ^ bit);
    last.back() = static_cast<char>(last.back() ^ bit);
    expect_refused(first, "first byte ^ " + std::to_string(bit));
    expect_refused(last, "last byte ^ " + std::to_string(bit));
  }
}

TEST_F(CheckpointFile, EverySingleByteCorruptionIsRefused) {
  const std::vector<char> good = saved_bytes();
  ASSERT_GT(good.size(), 1000u);
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::vector<char> bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x04);
    expect_refused(bad, "byte " + std::to_string(i) + " of " + std::to_string(good.size()) + " flipped");
    if (HasFailure()) return;  // one byte's report is enough
  }
}

TEST_F(CheckpointFile, TruncationByOneByteAndAnAppendedByteAreRefused) {
  const std::vector<char> good = saved_bytes();
  expect_refused(std::vector<char>(good.begin(), good.end() - 1), "truncated by one byte");
  std::vector<char> longer = good;
  longer.push_back('\0');
  expect_refused(longer, "one zero byte appended");
}

// A file whose checksum holds but whose step count is negative: the next AdamW step would divide by
// its bias correction 1 - beta^0 = 0, or flip the update's sign.
TEST_F(CheckpointFile, ANegativeStepCountIsRefusedEvenWithAValidChecksum) {
  std::vector<char> bad = saved_bytes();
  // magic 8, version 4, bytes per scalar 4, 11 configuration fields of 8, lora_alpha 8, then the steps
  constexpr std::size_t steps_at = 8 + 4 + 4 + 11 * 8 + 8;
  for (const std::int64_t steps : {std::int64_t{-1}, std::numeric_limits<std::int64_t>::min()}) {
    std::memcpy(bad.data() + steps_at, &steps, sizeof steps);
    const std::uint64_t sum = fnv1a64(bad.data(), bad.size() - 8);
    std::memcpy(bad.data() + bad.size() - 8, &sum, sizeof sum);
    expect_refused(bad, "steps = " + std::to_string(steps));
  }
}

TEST_F(CheckpointFile, EveryTruncationIsRefused) {
  const std::vector<char> good = saved_bytes();
  for (std::size_t size = 0; size < good.size(); ++size) {
    expect_refused(std::vector<char>(good.begin(), good.begin() + static_cast<long>(size)),
                   "truncated to " + std::to_string(size) + " bytes");
    if (HasFailure()) return;
  }
}

TEST_F(CheckpointFile, ADirectoryIsRefusedByName) {
  Gpt<double> model(tiny(), 2);
  AdamW<double> opt(model.layout(), {});
  try {
    load_checkpoint(dir_.string(), model, opt);
    ADD_FAILURE() << "a directory loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "load_checkpoint: '" + dir_.string() + "' is a directory, not a checkpoint file");
  }
}

TEST_F(CheckpointFile, SaveSyncsTheFileBeforeTheRenameAndTheDirectoryAfter) {
  Gpt<float> model(tiny(), 1);
  AdamW<float> opt(model.layout(), {});
  const std::string path = (dir_ / "synced.ckpt").string();
  test::start_file_syscall_log();
  save_checkpoint(path, model, opt);
  const std::vector<std::string> calls = test::stop_file_syscall_log();
  std::string trace;
  for (const std::string& call : calls) trace += "\n  " + call;

  const auto rename = std::find_if(calls.begin(), calls.end(), [&](const std::string& call) {
    return call.starts_with("rename ") && call.ends_with(" " + path);
  });
  ASSERT_NE(rename, calls.end()) << "no rename onto " << path << trace;
  const std::string temp = rename->substr(7, rename->size() - 7 - path.size() - 1);
  EXPECT_NE(std::find(calls.begin(), rename, "fsync " + temp), rename) << "the temp file is not synced before its rename" << trace;
  EXPECT_NE(std::find(rename, calls.end(), "fsync " + dir_.string()), calls.end())
      << "the directory is not synced after the rename" << trace;
  EXPECT_FALSE(fs::exists(temp));
}

}  // namespace
}  // namespace ped::ref
