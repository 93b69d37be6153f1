// Where a result came from: the source revision it was built from and the kind of machine it ran on.
// bench records both in its JSON context, verify in its shard manifest (shard.hpp); report merge
// refuses shards of different revisions, and timings from different kinds of machine in one report.
#pragma once

#include <string>

namespace ped {

// PED_GIT_REV from the environment when set; else the source tree's HEAD now (12 hex digits, with
// "-dirty" when tracked files differ from it), so that a rebuild-free run after a commit is labelled
// right; else the revision at configure time; else "unknown".
std::string source_revision();

// The kind of machine, for deciding whether timings are comparable: the CPU model (/proc/cpuinfo's
// "model name", else "unknown CPU") and the number of logical CPUs online, e.g. "Intel(R) Xeon(R)
// Platinum 8488C x 2 CPUs". Not the host name: the nodes of one cluster partition share a kind. The
// CPUs a job may use (a Slurm allocation, taskset) do not change it; bench records its threads
// separately.
std::string host_kind();

}  // namespace ped
