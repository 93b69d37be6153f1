#include "reports/text_format.hpp"

#include <cmath>
#include <cstdio>

namespace ped::reports {

std::string format_fixed(double value, int decimals) {
  if (std::isnan(value)) return "n/a";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
  return buffer;
}

std::string format_significant(double value, int digits) {
  if (std::isnan(value)) return "n/a";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*g", digits, value);
  return buffer;
}

std::string format_duration_ns(double ns) {
  if (std::isnan(ns)) return "n/a";
  const char* unit = "ns";
  double value = ns;
  if (std::fabs(ns) >= 1e9) {
    value = ns / 1e9;
    unit = "s";
  } else if (std::fabs(ns) >= 1e6) {
    value = ns / 1e6;
    unit = "ms";
  } else if (std::fabs(ns) >= 1e3) {
    value = ns / 1e3;
    unit = "us";
  }
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.4g %s", value, unit);
  return buffer;
}

std::string format_bytes(double bytes) {
  if (std::isnan(bytes)) return "n/a";
  static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = bytes;
  std::size_t unit = 0;
  while (std::fabs(value) >= 1024.0 && unit + 1 < std::size(units)) {
    value /= 1024.0;
    ++unit;
  }
  char buffer[64];
  if (unit == 0) {
    std::snprintf(buffer, sizeof(buffer), "%.0f B", value);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.2f %s", value, units[unit]);
  }
  return buffer;
}

}  // namespace ped::reports
