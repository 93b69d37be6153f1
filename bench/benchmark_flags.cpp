#include "bench/benchmark_flags.hpp"

#include <cmath>
#include <set>

#include "core/numbers.hpp"

namespace ped::bench {

std::string benchmark_flag_error(const std::vector<std::string>& args, const std::string& program) {
  struct Flag {
    const char* name;
    const char* expected;
    bool integer;
    double lo, hi;
    bool lo_open;
  };
  static constexpr Flag kFlags[] = {
      {"benchmark_repetitions", "an integer in [1, 100000]", true, 1, 100000, false},
      {"benchmark_min_time", "a finite number in (0, 86400]", false, 0, 86400, true},
      {"benchmark_min_warmup_time", "a finite number in [0, 86400]", false, 0, 86400, false},
  };
  std::set<std::string> given;
  for (const std::string& arg : args) {
    for (const Flag& flag : kFlags) {
      const std::string prefix = std::string("--") + flag.name;
      if (arg != prefix && !arg.starts_with(prefix + "=")) continue;
      if (!given.insert(flag.name).second) return program + ": " + prefix + " is given more than once";
      const std::string text = arg.size() > prefix.size() ? arg.substr(prefix.size() + 1) : "";
      std::optional<double> value;
      if (flag.integer) {
        if (const std::optional<long long> integer = parse_whole_integer<long long>(text)) {
          value = static_cast<double>(*integer);
        }
      } else {
        value = parse_whole_finite(text);
      }
      const bool in_range = value && (flag.lo_open ? *value > flag.lo : *value >= flag.lo) && *value <= flag.hi;
      if (!in_range) return program + ": " + prefix + " expects " + flag.expected + ", got '" + text + "'";
    }
  }
  return "";
}

}  // namespace ped::bench
