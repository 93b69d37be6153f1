// Running code that may crash (a plugin's kernel) in a forked child process, so that a segfault,
// an abort or an exit in it ends the child and is reported instead of ending the caller.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace ped::plugin {

struct ChildOutcome {
  bool completed = false;  // work returned and the child exited with status 0
  std::string output;      // what work returned; when not completed, whatever it had sent before
  int signal = 0;          // the signal that ended the child, 0 if none did
  int exit_status = 0;     // the child's exit status when it exited
  bool timed_out = false;  // the child ran past the time limit and was killed
  std::string failure;     // when not completed: "killed by signal 11 (Segmentation fault)", ...
};

struct ChildLimits {
  // Wall-clock time the child may run; past it, the child's process group is killed with SIGKILL
  // and the outcome is a failure "did not finish within ...". Zero: no limit.
  std::chrono::milliseconds time_limit{0};
};

// The time limit verify and bench give each child process that runs a plugin, unless told otherwise
// (--plugin-timeout): one check of verify's default sweep, or one trial run of bench at its smallest
// sequence length, takes well under a second, so 300 s is far above any of them on a slow or busy CI
// machine, yet ends the job of a plugin that hangs in minutes rather than at the CI's own limit
// (often hours).
inline constexpr std::chrono::milliseconds kDefaultPluginTimeLimit{300'000};

// Forks; the child runs work() and sends its result back through a pipe, then ends with _exit
// (no atexit handlers, no stdio flush of the parent's buffers, which are flushed before the fork).
// An exception escaping work() is reported as the failure "threw: <what>". The child leads a
// process group of its own, so that a time limit also ends what it started. Throws
// std::runtime_error when the fork or the pipe cannot be made.
//
// The caller should not be running other threads that hold locks the child needs (the child has
// only the calling thread); the tools here run their checks single-threaded around it.
ChildOutcome run_in_child(const std::function<std::string()>& work, const ChildLimits& limits = {});

}  // namespace ped::plugin
