// Fuzz target of the checkpoint loader (ped::ref::load_checkpoint, reference/checkpoint.hpp).
//
// Input: one mode byte, then the file. Mode bit 0 picks the model: a tiny double GPT, or a tiny float
// GPT with a LoRA adapter (whose lora_alpha the loader also compares). Mode bit 1 rewrites the last 8
// bytes of the file with the FNV-1a checksum of the rest, so that mutations get past the checksum
// and reach the header and size checks behind it.
//
// The loader may refuse with std::runtime_error or std::invalid_argument (its documented errors),
// naming the file, and must then leave the model and the optimizer untouched. When it accepts, the
// file must be exactly what save_checkpoint writes for this model: the layout of checkpoint.hpp
// checked here byte by byte, and the model must now hold the file's buffers and step count.
#include "fuzz/fuzz_target.hpp"
#include "reference/checkpoint.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

namespace {

namespace ref = ped::ref;
constexpr std::string_view target = "checkpoint";

// magic 8, version 4, bytes per scalar 4, 11 configuration fields of 8, lora_alpha 8, steps 8, n 8
constexpr std::size_t header_bytes = 8 + 4 + 4 + 11 * 8 + 8 + 8 + 8;
constexpr std::size_t config_begin = 16;
constexpr std::size_t alpha_at = config_begin + 11 * 8;
constexpr std::size_t steps_at = alpha_at + 8;
constexpr std::size_t n_at = steps_at + 8;

template <class V>
V read_at(const std::vector<char>& bytes, std::size_t at) {
  V value;
  std::memcpy(&value, bytes.data() + at, sizeof(V));
  return value;
}

ref::GptConfig tiny_config(bool lora) {
  ref::GptConfig config;
  config.vocab = 4;
  config.context = 2;
  config.width = 2;
  config.heads = 1;
  config.layers = 1;
  config.ffn = 2;
  if (lora) {
    config.lora_rank = 1;
    config.lora_targets = ref::lora_q;
  }
  return config;
}

// A file in memory with a path that any open() reads from the start.
class MemoryFile {
 public:
  MemoryFile() : fd_(memfd_create("checkpoint", 0)) {
    if (fd_ < 0) ped::fuzz::fail(target, "memfd_create failed");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  void write(const std::vector<char>& bytes) {
    if (ftruncate(fd_, 0) != 0 || pwrite(fd_, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
      ped::fuzz::fail(target, "cannot write the memory file");
    }
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

template <class T>
struct Fixture {
  ref::Gpt<T> model;
  ref::AdamW<T> optimizer;
  std::vector<char> saved;  // save_checkpoint of this model: the header the loader must match

  explicit Fixture(bool lora) : model(tiny_config(lora), 7), optimizer(model.layout(), ref::AdamWConfig{}) {
    const std::filesystem::path file =
        std::filesystem::temp_directory_path() / ("ped-fuzz-checkpoint-" + std::to_string(getpid()) + ".bin");
    ref::save_checkpoint(file.string(), model, optimizer);
    std::ifstream in(file, std::ios::binary);
    saved.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    std::filesystem::remove(file);
  }
};

template <class T>
struct State {
  std::vector<T> params, m, v;
  std::int64_t steps;
  bool operator==(const State& other) const {
    // Bytes, not values: a NaN parameter restored must compare equal to itself.
    const auto same = [](const std::vector<T>& a, const std::vector<T>& b) {
      return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
    };
    return same(params, other.params) && same(m, other.m) && same(v, other.v) && steps == other.steps;
  }
};

template <class T>
State<T> state_of(const Fixture<T>& f) {
  return {f.model.params().data(), f.optimizer.m().data(), f.optimizer.v().data(), f.optimizer.steps()};
}

template <class T>
void run(Fixture<T>& fixture, MemoryFile& file, const std::vector<char>& bytes) {
  file.write(bytes);
  const State<T> before = state_of(fixture);
  try {
    ref::load_checkpoint(file.path(), fixture.model, fixture.optimizer);
  } catch (const std::exception& error) {
    const bool documented = dynamic_cast<const std::runtime_error*>(&error) || dynamic_cast<const std::invalid_argument*>(&error);
    if (!documented) ped::fuzz::fail(target, std::string("threw an undocumented exception type: ") + error.what());
    const std::string message = error.what();
    if (!message.starts_with("load_checkpoint: '" + file.path() + "'") || ped::fuzz::has_control_character(message)) {
      ped::fuzz::fail(target, "error message does not name the file on one line: " + message);
    }
    if (!(state_of(fixture) == before)) ped::fuzz::fail(target, "a refused file modified the model: " + message);
    return;
  } catch (...) {
    ped::fuzz::fail(target, "threw something that is not a std::exception");
  }

  const std::size_t n = fixture.model.params().data().size();
  const std::size_t buffer_bytes = n * sizeof(T);
  if (bytes.size() != header_bytes + 3 * buffer_bytes + 8) ped::fuzz::fail(target, "accepted a file of the wrong size");
  if (std::memcmp(bytes.data(), "PEDGPTCK", 8) != 0) ped::fuzz::fail(target, "accepted a wrong magic");
  if (read_at<std::uint32_t>(bytes, 8) != ref::kCheckpointVersion) ped::fuzz::fail(target, "accepted another version");
  if (read_at<std::uint32_t>(bytes, 12) != sizeof(T)) ped::fuzz::fail(target, "accepted another scalar size");
  if (std::memcmp(bytes.data() + config_begin, fixture.saved.data() + config_begin, alpha_at - config_begin) != 0) {
    ped::fuzz::fail(target, "accepted another configuration");
  }
  if (fixture.model.config().lora_rank > 0 && read_at<double>(bytes, alpha_at) != fixture.model.config().lora_alpha) {
    ped::fuzz::fail(target, "accepted another lora_alpha");
  }
  if (read_at<std::uint64_t>(bytes, n_at) != n) ped::fuzz::fail(target, "accepted another element count");
  if (read_at<std::int64_t>(bytes, steps_at) < 0) ped::fuzz::fail(target, "accepted a negative step count");
  if (read_at<std::uint64_t>(bytes, bytes.size() - 8) != ref::fnv1a64(bytes.data(), bytes.size() - 8)) {
    ped::fuzz::fail(target, "accepted a wrong checksum");
  }
  const State<T> after = state_of(fixture);
  if (std::memcmp(after.params.data(), bytes.data() + header_bytes, buffer_bytes) != 0 ||
      std::memcmp(after.m.data(), bytes.data() + header_bytes + buffer_bytes, buffer_bytes) != 0 ||
      std::memcmp(after.v.data(), bytes.data() + header_bytes + 2 * buffer_bytes, buffer_bytes) != 0 ||
      after.steps != read_at<std::int64_t>(bytes, steps_at)) {
    ped::fuzz::fail(target, "the model does not hold what the accepted file holds");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture<double> plain(false);
  static Fixture<float> adapted(true);
  static MemoryFile file;
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  std::vector<char> bytes(reinterpret_cast<const char*>(data) + 1, reinterpret_cast<const char*>(data) + size);
  if ((mode & 2) && bytes.size() >= 8) {
    const std::uint64_t sum = ref::fnv1a64(bytes.data(), bytes.size() - 8);
    std::memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
  }
  if (mode & 1) {
    run(adapted, file, bytes);
  } else {
    run(plain, file, bytes);
  }
  return 0;
}
