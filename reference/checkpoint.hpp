// Checkpoints of a Gpt and its AdamW state: one binary file, versioned header, FNV-1a 64 checksum.
//
// Layout (host byte order, little-endian on every machine this project builds on):
//   magic "PEDGPTCK" (8 bytes), u32 version (1), u32 bytes per scalar (4 float, 8 double),
//   u64 vocab, context, width, heads, layers, ffn, lora_rank, lora_targets (0 when rank 0), f64 lora_alpha,
//   i64 optimizer steps, u64 n (elements of one buffer),
//   n scalars of parameters, n of AdamW first moments, n of second moments,
//   u64 FNV-1a 64 of every byte before it.
// save writes a temporary file beside the target, fsyncs it, renames it over the target and fsyncs the
// directory, so a crash never leaves a half-written checkpoint under the real name.
#pragma once

#include <cstdint>
#include <string>

#include "reference/adamw.hpp"
#include "reference/gpt.hpp"

namespace ped::ref {

inline constexpr std::uint32_t kCheckpointVersion = 2;  // 2: GELU, eps and mask in the header

// FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
std::uint64_t fnv1a64(const void* data, std::size_t bytes, std::uint64_t hash = 0xcbf29ce484222325ULL);

// Throws std::runtime_error when the file cannot be written.
template <class T>
void save_checkpoint(const std::string& path, const Gpt<T>& model, const AdamW<T>& optimizer);

// Restores parameters, moments and the step count. Throws std::runtime_error naming the file and the
// problem when it is a directory or cannot be read, is truncated, has trailing bytes, a wrong magic, version or scalar
// size, or a checksum mismatch (corruption); std::invalid_argument when it holds another configuration.
// Nothing is modified unless the whole file checks out.
template <class T>
void load_checkpoint(const std::string& path, Gpt<T>& model, AdamW<T>& optimizer);

}  // namespace ped::ref
