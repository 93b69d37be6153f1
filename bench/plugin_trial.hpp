// Trial runs of plugin contenders, before any benchmark: a kernel from outside this project first
// runs once per mask and head dim of the sweep, at its smallest sequence length, in a child
// process (plugin_host/child_process.hpp), forward and (when the sweep times one) backward. A
// crash, an error it returns, an exception or a run past --plugin-timeout (the child is killed) is
// reported with the case, and that contender's benchmarks are skipped instead of ending the run.
#pragma once

#include <map>
#include <string>

#include "bench/bench_config.hpp"

namespace ped::bench {

// Contender name -> why its trial failed, for every plugin contender of the sweep that failed.
std::map<std::string, std::string> trial_run_plugins(const BenchConfig& config);

}  // namespace ped::bench
