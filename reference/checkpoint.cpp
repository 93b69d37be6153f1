#include "reference/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

namespace ped::ref {

namespace {

constexpr char kMagic[8] = {'P', 'E', 'D', 'G', 'P', 'T', 'C', 'K'};
constexpr std::size_t kConfigFields = 11;
// magic, version, scalar bytes, config fields, alpha, steps, n
constexpr std::size_t kHeaderBytes = 8 + 4 + 4 + 8 * kConfigFields + 8 + 8 + 8;

template <class V>
void put(std::vector<char>& out, std::size_t& at, const V& value) {
  std::memcpy(out.data() + at, &value, sizeof(V));
  at += sizeof(V);
}

template <class V>
V get(const std::vector<char>& in, std::size_t& at) {
  V value;
  std::memcpy(&value, in.data() + at, sizeof(V));
  at += sizeof(V);
  return value;
}

// Everything that changes what the stored weights compute: sizes, adapters, the GELU, layer norm's
// eps (its bit pattern) and the attention mask (a hash of Mask::name(), which spells its parameters).
std::uint64_t config_field(const GptConfig& c, std::size_t i) {
  // Without adapters (rank 0) the targets mean nothing: stored and compared as 0.
  const std::uint64_t targets = c.lora_rank ? c.lora_targets : 0;
  std::uint64_t eps_bits = 0;
  std::memcpy(&eps_bits, &c.eps, sizeof(eps_bits));
  const std::string mask = c.mask.name();
  const std::uint64_t f[kConfigFields] = {c.vocab,     c.context, c.width,
                                          c.heads,     c.layers,  c.ffn,
                                          c.lora_rank, targets,   static_cast<std::uint64_t>(c.approx),
                                          eps_bits,    fnv1a64(mask.data(), mask.size())};
  return f[i];
}
constexpr const char* kConfigNames[kConfigFields] = {"vocab",     "context",      "width",          "heads",
                                                     "layers",    "ffn",          "lora_rank",      "lora_targets",
                                                     "gelu approximation", "layer norm eps (bits)", "mask (hash of its name)"};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("load_checkpoint: '" + path + "' " + what);
}

[[noreturn]] void fail_errno(const std::string& what, const std::string& path, int error) {
  throw std::runtime_error("save_checkpoint: " + what + " '" + path + "' failed: " + std::strerror(error));
}

// Writes bytes to a new file and fsyncs it before returning: the rename that follows must never make
// the checkpoint's name point at blocks a crash could still lose. Removes the file on any failure.
void write_synced(const std::string& path, const std::vector<char>& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_errno("opening", path, errno);
  const char* data = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t written = ::write(fd, data, left);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      const int error = written < 0 ? errno : EIO;
      ::close(fd);
      ::unlink(path.c_str());
      fail_errno("writing", path, error);
    }
    data += written;
    left -= static_cast<std::size_t>(written);
  }
  const bool synced = ::fsync(fd) == 0;
  const int sync_error = errno;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed) {
    const int error = synced ? errno : sync_error;
    ::unlink(path.c_str());
    fail_errno("flushing", path, error);
  }
}

// The rename itself is durable once the directory holding the name is synced.
void sync_parent_directory(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail_errno("opening the directory", dir, errno);
  const bool synced = ::fsync(fd) == 0;
  const int error = errno;
  ::close(fd);
  if (!synced) fail_errno("syncing the directory", dir, error);
}

}  // namespace

std::uint64_t fnv1a64(const void* data, std::size_t bytes, std::uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) {
    hash ^= p[i];
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

template <class T>
void save_checkpoint(const std::string& path, const Gpt<T>& model, const AdamW<T>& opt) {
  const GptConfig& c = model.config();
  if (model.lora_merged()) {
    // merged weights hold W0 + s B A and the adapters too: loaded into an unmerged model they would count twice
    throw std::invalid_argument("save_checkpoint: the LoRA adapters are merged; unmerge_lora() before saving");
  }
  const std::vector<T>& p = model.params().data();
  const std::size_t n = p.size();
  if (opt.m().data().size() != n) {
    throw std::invalid_argument("save_checkpoint: optimizer holds " + std::to_string(opt.m().data().size()) +
                                " elements, the model " + std::to_string(n));
  }
  // Written into a buffer of the final size (GCC 12 misreports vector::insert growth as an overflow).
  std::vector<char> out(kHeaderBytes + 3 * n * sizeof(T) + 8);
  std::size_t at = 0;
  std::memcpy(out.data(), kMagic, 8);
  at += 8;
  put(out, at, kCheckpointVersion);
  put(out, at, static_cast<std::uint32_t>(sizeof(T)));
  for (std::size_t i = 0; i < kConfigFields; ++i) put(out, at, config_field(c, i));
  put(out, at, c.lora_alpha);
  put(out, at, static_cast<std::int64_t>(opt.steps()));
  put(out, at, static_cast<std::uint64_t>(n));
  for (const std::vector<T>* buf : {&p, &opt.m().data(), &opt.v().data()}) {
    std::memcpy(out.data() + at, buf->data(), n * sizeof(T));
    at += n * sizeof(T);
  }
  put(out, at, fnv1a64(out.data(), at));

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  write_synced(tmp, out);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("save_checkpoint: cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(error));
  }
  sync_parent_directory(path);
}

template <class T>
void load_checkpoint(const std::string& path, Gpt<T>& model, AdamW<T>& opt) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (std::filesystem::is_directory(status)) fail(path, "is a directory, not a checkpoint file");
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) fail(path, "is not a regular file");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot be opened");
  std::vector<char> in;
  try {
    in.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  } catch (const std::exception& e) {  // libstdc++'s filebuf throws on a read error (EIO, EISDIR)
    fail(path, std::string("cannot be read: ") + e.what());
  }
  if (in.size() < kHeaderBytes + 8) {
    fail(path, "is truncated: " + std::to_string(in.size()) + " bytes, shorter than the " +
                   std::to_string(kHeaderBytes + 8) + "-byte header and checksum");
  }
  if (std::memcmp(in.data(), kMagic, 8) != 0) fail(path, "is not a pedestrian GPT checkpoint (bad magic)");
  std::size_t at = 8;
  const auto version = get<std::uint32_t>(in, at);
  if (version != kCheckpointVersion) {
    fail(path, "has format version " + std::to_string(version) + ", expected " + std::to_string(kCheckpointVersion));
  }
  const auto scalar = get<std::uint32_t>(in, at);
  if (scalar != sizeof(T)) {
    fail(path, "holds " + std::to_string(scalar) + "-byte scalars, the model uses " + std::to_string(sizeof(T)));
  }
  std::uint64_t fields[kConfigFields];
  for (std::size_t i = 0; i < kConfigFields; ++i) fields[i] = get<std::uint64_t>(in, at);
  const auto alpha = get<double>(in, at);
  const auto steps = get<std::int64_t>(in, at);
  const auto n = get<std::uint64_t>(in, at);
  const std::uint64_t max_n = (in.size() - kHeaderBytes - 8) / (3 * sizeof(T));
  const std::size_t expected = n > max_n + 1 ? 0 : kHeaderBytes + 3 * n * sizeof(T) + 8;
  if (expected == 0 || in.size() < expected) {
    fail(path, "is truncated: " + std::to_string(in.size()) + " bytes, the header announces " + std::to_string(n) +
                   " elements per buffer");
  }
  if (in.size() > expected) {
    fail(path, "has " + std::to_string(in.size() - expected) + " trailing bytes after the checksum");
  }
  std::size_t sum_at = expected - 8;
  const auto stored = get<std::uint64_t>(in, sum_at);
  const std::uint64_t actual = fnv1a64(in.data(), expected - 8);
  if (stored != actual) fail(path, "is corrupted: checksum mismatch");
  // AdamW's bias correction divides by 1 - beta^t: t < 0 flips the update, and t = 0 only before any step.
  if (steps < 0) fail(path, "holds a negative optimizer step count (" + std::to_string(steps) + ")");
  const GptConfig& c = model.config();
  for (std::size_t i = 0; i < kConfigFields; ++i) {
    if (fields[i] != config_field(c, i)) {
      throw std::invalid_argument("load_checkpoint: '" + path + "' holds " + kConfigNames[i] + " = " +
                                  std::to_string(fields[i]) + ", the model has " + std::to_string(config_field(c, i)));
    }
  }
  if (c.lora_rank && alpha != c.lora_alpha) throw std::invalid_argument("load_checkpoint: '" + path + "' holds another lora_alpha");
  if (n != model.params().data().size() || n != opt.m().data().size()) {
    throw std::invalid_argument("load_checkpoint: '" + path + "' holds " + std::to_string(n) +
                                " elements per buffer, the model has " + std::to_string(model.params().data().size()));
  }
  for (std::vector<T>* buf : {&model.params().data(), &opt.m().data(), &opt.v().data()}) {
    std::memcpy(buf->data(), in.data() + at, n * sizeof(T));
    at += n * sizeof(T);
  }
  opt.set_steps(steps);
}

template void save_checkpoint<float>(const std::string&, const Gpt<float>&, const AdamW<float>&);
template void save_checkpoint<double>(const std::string&, const Gpt<double>&, const AdamW<double>&);
template void load_checkpoint<float>(const std::string&, Gpt<float>&, AdamW<float>&);
template void load_checkpoint<double>(const std::string&, Gpt<double>&, AdamW<double>&);

}  // namespace ped::ref
