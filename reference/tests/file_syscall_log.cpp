#include "reference/tests/file_syscall_log.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <vector>

namespace {

std::mutex g_mutex;
bool g_recording = false;
std::vector<std::string> g_lines;

void record(std::string line) {
  const std::lock_guard<std::mutex> lock(g_mutex);
  if (g_recording) g_lines.push_back(std::move(line));
}

std::string path_of(int fd) {
  char buffer[4096];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), buffer, sizeof buffer - 1);
  return n < 0 ? "fd:" + std::to_string(fd) : std::string(buffer, static_cast<std::size_t>(n));
}

// A path as /proc/self/fd names it: absolute, through the current directory when relative.
std::string absolute(const char* path) {
  if (path[0] == '/') return path;
  char cwd[4096];
  return ::getcwd(cwd, sizeof cwd) ? std::string(cwd) + "/" + path : path;
}

}  // namespace

extern "C" int fsync(int fd) {
  record("fsync " + path_of(fd));
  return static_cast<int>(::syscall(SYS_fsync, fd));
}

extern "C" int rename(const char* from, const char* to) {
  record("rename " + absolute(from) + " " + absolute(to));
  return ::renameat(AT_FDCWD, from, AT_FDCWD, to);
}

namespace ped::test {

void start_file_syscall_log() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  g_lines.clear();
  g_recording = true;
}

std::vector<std::string> stop_file_syscall_log() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  g_recording = false;
  return std::move(g_lines);
}

}  // namespace ped::test
