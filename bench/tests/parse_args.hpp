// What the bench tests share: parse_options on a command line given as strings.
#pragma once

#include "bench/bench_config.hpp"

#include <string>
#include <vector>

namespace ped::bench::testing {

// parse_options on {"bench", args...}.
inline BenchConfig config_of(std::vector<std::string> args) {
  args.insert(args.begin(), "bench");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(args.size());
  return parse_options(argc, argv.data());
}

}  // namespace ped::bench::testing
