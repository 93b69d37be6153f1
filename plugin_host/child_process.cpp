#include "plugin_host/child_process.hpp"

#include <sys/wait.h>
#include <unistd.h>

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

ChildOutcome run_in_child(const std::function<std::string()>& work) {
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
  ChildOutcome outcome;
  char buffer[65536];
  for (;;) {
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
