#include "verify/plugins.hpp"

#include <sstream>
#include <stdexcept>

#include "plugin_host/plugin_loader.hpp"

namespace ped::verify {

void load_plugins(const std::vector<std::string>& paths, const std::string& layouts, std::ostream& log) {
  plugin::PluginLoadOptions options;
  if (!layouts.empty()) {
    options.layouts.clear();
    std::stringstream ss(layouts);
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (item.empty()) continue;
      try {
        options.layouts.push_back(plugin::parse_plugin_layout(item));
      } catch (const std::invalid_argument&) {
        throw std::invalid_argument("--plugin-layouts: '" + item + "' is not contiguous or strided");
      }
    }
    if (options.layouts.empty()) throw std::invalid_argument("--plugin-layouts: no layout given");
    if (paths.empty()) throw std::invalid_argument("--plugin-layouts: given without --plugin");
  }
  for (const std::string& path : paths) {
    try {
      const std::string loaded = plugin::describe(plugin::load_attention_plugin(path, options));
      log << "verify: plugin " << loaded << "\n";
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("--plugin: ") + e.what());
    }
  }
}

}  // namespace ped::verify
