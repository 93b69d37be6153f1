#include "reference/checkpoint.hpp"

#include <unistd.h>

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
void put(std::vector<char>& out, const V& value) {
  const char* p = reinterpret_cast<const char*>(&value);
  out.insert(out.end(), p, p + sizeof(V));
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
  std::vector<char> out;
  out.reserve(kHeaderBytes + 3 * n * sizeof(T) + 8);
  out.insert(out.end(), kMagic, kMagic + 8);
  put(out, kCheckpointVersion);
  put(out, static_cast<std::uint32_t>(sizeof(T)));
  for (std::size_t i = 0; i < kConfigFields; ++i) put(out, config_field(c, i));
  put(out, c.lora_alpha);
  put(out, static_cast<std::int64_t>(opt.steps()));
  put(out, static_cast<std::uint64_t>(n));
  for (const std::vector<T>* buf : {&p, &opt.m().data(), &opt.v().data()}) {
    const char* b = reinterpret_cast<const char*>(buf->data());
    out.insert(out.end(), b, b + n * sizeof(T));
  }
  put(out, fnv1a64(out.data(), out.size()));

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("save_checkpoint: cannot open '" + tmp + "' for writing");
    f.write(out.data(), static_cast<std::streamsize>(out.size()));
    f.flush();
    if (!f) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw std::runtime_error("save_checkpoint: writing '" + tmp + "' failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw std::runtime_error("save_checkpoint: cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
  }
}

template <class T>
void load_checkpoint(const std::string& path, Gpt<T>& model, AdamW<T>& opt) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot be opened");
  const std::vector<char> in((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
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
