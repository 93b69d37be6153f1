// Loading an attention plugin (include/pedestrian/attention_plugin.h) into the registry of
// attention implementations (variants/registry.hpp), where verify and bench find it by name.
//
// B batch, H heads, Nq/Nk query/key tokens, d head dim. The registry hands the plugin's adapter
// contiguous row-major buffers and the row statistics in their in-tree form (RowStatistic<T>);
// the adapter passes them on as DLTensors in the chosen layout, with the lse as the ABI's float64
// (B, H, Nq) tensor, and converts back. Each call checks the plugin's return code (an error is
// thrown as std::runtime_error with the plugin's message) and, in the strided layout, that it
// wrote nothing outside its outputs' elements and nothing into its inputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plugin_host/host_tensor.hpp"

namespace ped::plugin {

struct PluginLoadOptions {
  // One registry entry per layout: "name" for contiguous, "name[strided]" for strided.
  std::vector<PluginLayout> layouts = {PluginLayout::contiguous};
  // Fill out, lse, dq, dk, dv with NaN before each call, so that elements a kernel leaves unwritten
  // fail the checks (verify); bench turns it off to time the kernel alone.
  bool fill_outputs_with_nan = true;
};

struct LoadedPlugin {
  std::string path;
  std::string name;
  std::string description;
  std::vector<std::string> variants;  // the registry names, one per layout
  bool float32 = false, float64 = false, backward = false;
  bool bfloat16 = false, float16 = false;  // 16-bit dtypes: plugin_host/reduced_precision.hpp
  std::vector<std::string> mask_kinds;  // the ABI's mask kinds it takes: none, causal, ...
  std::uint32_t abi_version = 1;        // the ABI version its description speaks (1 or 2)
  // The features it declares (version 2), as the registry names them (to_string(AttentionFeature)):
  // grouped_query, variable_length, dropout, alibi, softcap, sinks. The registry entries' `features`.
  std::vector<std::string> features;
};

// dlopens `path`, calls its entry point with this harness's ABI version (2), validates the
// description and registers it. A version-1 plugin gets version-1 argument structs (struct_size),
// exactly as a version-1 harness passed them, and no features; a version-2 plugin's `features` bits
// become AttentionImpl::features, so the registry refuses calls using any other, and it gets the
// version-2 fields of the features it declares (the others stay NULL or 0). Throws
// std::invalid_argument, naming the path and what is wrong, when the file cannot be loaded, has no
// entry point, speaks an ABI version other than 1 and 2, declares features its version does not
// define (naming the bit), or describes itself incompletely or with a name that is malformed or
// taken. The library stays loaded for the life of the process.
LoadedPlugin load_attention_plugin(const std::string& path, const PluginLoadOptions& options = {});

// "simple (float32, float64; masks none, causal; forward and backward; ABI version 2, features
// grouped_query, sinks) from PATH as variant simple"
std::string describe(const LoadedPlugin& plugin);

// The plugins loaded so far in this process, in load order.
const std::vector<LoadedPlugin>& loaded_plugins();

}  // namespace ped::plugin
