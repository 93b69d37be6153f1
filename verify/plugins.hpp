// verify's --plugin and --plugin-layouts: attention plugins loaded into the registry before the
// sweep is built, so that op sdpa runs them as variants of their own.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace ped::verify {

// Loads every library of `paths` in each layout of the comma-separated `layouts` ("contiguous",
// "strided"; empty: contiguous) and writes one line per plugin to `log`. Throws
// std::invalid_argument naming the option and what is wrong (a usage error: exit 2).
void load_plugins(const std::vector<std::string>& paths, const std::string& layouts, std::ostream& log);

}  // namespace ped::verify
