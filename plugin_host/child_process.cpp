#include "plugin_host/child_process.hpp"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <stdexcept>

namespace ped::plugin {

namespace {

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Exit statuses of the child for failures of its own (not of work's code).
constexpr int kThrew = 97;
constexpr int kPipeFailed = 98;

}  // namespace

ChildOutcome run_in_child(const std::function<std::string()>& work, const ChildLimits& limits) {
  if (limits.time_limit.count() < 0) {
    throw std::invalid_argument("run_in_child: time_limit = " + std::to_string(limits.time_limit.count()) +
                                " ms, expected >= 0");
  }
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error(std::string("run_in_child: pipe failed: ") + std::strerror(errno));
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::runtime_error(std::string("run_in_child: fork failed: ") + std::strerror(err));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::close(fds[0]);
    int status = 0;
    try {
      const std::string result = work();
      if (!write_all(fds[1], result.data(), result.size())) status = kPipeFailed;
    } catch (const std::exception& e) {
      const std::string message = std::string("threw: ") + e.what();
      write_all(fds[1], message.data(), message.size());
      status = kThrew;
    } catch (...) {
      const std::string message = "threw: an exception that is not a std::exception";
      write_all(fds[1], message.data(), message.size());
      status = kThrew;
    }
    std::cout.flush();
    std::cerr.flush();
    ::close(fds[1]);
    ::_exit(status);
  }
  ::close(fds[1]);
  ::setpgid(pid, pid);  // also here: whichever of parent and child runs first, the group exists before a kill
  ChildOutcome outcome;
  using Clock = std::chrono::steady_clock;
  const bool limited = limits.time_limit.count() > 0;
  const Clock::time_point deadline = Clock::now() + limits.time_limit;
  char buffer[65536];
  for (;;) {
    if (limited) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      pollfd ready{.fd = fds[0], .events = POLLIN, .revents = 0};
      const int polled = left > 0 ? ::poll(&ready, 1, static_cast<int>(std::min<long long>(left, 1 << 30))) : 0;
      if (polled < 0 && errno == EINTR) continue;
      if (polled == 0) {
        // Past the limit: end the child and everything it started (its process group).
        if (::kill(-pid, SIGKILL) != 0) ::kill(pid, SIGKILL);
        outcome.timed_out = true;
        break;
      }
    }
    const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n > 0) {
      outcome.output.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error(std::string("run_in_child: waitpid failed: ") + std::strerror(errno));
  }
  if (outcome.timed_out) {
    if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
    char limit[32];
    std::snprintf(limit, sizeof limit, "%g s", static_cast<double>(limits.time_limit.count()) / 1000.0);
    outcome.failure = std::string("did not finish within ") + limit + " and was killed";
    return outcome;
  }
  if (WIFSIGNALED(status)) {
    outcome.signal = WTERMSIG(status);
    const char* name = ::strsignal(outcome.signal);
    outcome.failure = "killed by signal " + std::to_string(outcome.signal) + " (" + (name ? name : "unknown") + ")";
  } else if (WIFEXITED(status)) {
    outcome.exit_status = WEXITSTATUS(status);
    if (outcome.exit_status == 0) {
      outcome.completed = true;
    } else if (outcome.exit_status == kThrew) {
      outcome.failure = outcome.output;
      outcome.output.clear();
    } else if (outcome.exit_status == kPipeFailed) {
      outcome.failure = "could not send its result back";
    } else {
      outcome.failure = "exited with status " + std::to_string(outcome.exit_status);
    }
  } else {
    outcome.failure = "ended with wait status " + std::to_string(status);
  }
  return outcome;
}

}  // namespace ped::plugin
