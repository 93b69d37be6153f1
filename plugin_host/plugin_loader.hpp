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
};

// dlopens `path`, calls its entry point, validates the description and registers it. Throws
// std::invalid_argument, naming the path and what is wrong, when the file cannot be loaded, has no
// entry point, speaks another ABI version, or describes itself incompletely or with a name that is
// malformed or taken. The library stays loaded for the life of the process.
LoadedPlugin load_attention_plugin(const std::string& path, const PluginLoadOptions& options = {});

// "simple (float32, float64; masks none, causal; forward and backward) from PATH"
std::string describe(const LoadedPlugin& plugin);

// The plugins loaded so far in this process, in load order.
const std::vector<LoadedPlugin>& loaded_plugins();

}  // namespace ped::plugin
