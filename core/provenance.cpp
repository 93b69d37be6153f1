#include "core/provenance.hpp"

#include "core/process.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vector>
#include <string>

#ifndef PED_SOURCE_DIR
#define PED_SOURCE_DIR ""
#endif
#ifndef PED_GIT_REV_CONFIGURED
#define PED_GIT_REV_CONFIGURED "unknown"
#endif

namespace ped {

namespace {

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  std::size_t start = 0;
  while (start < text.size() && (text[start] == ' ' || text[start] == '\t')) ++start;
  return text.substr(start);
}

// Its standard output, or "" when git is missing, the directory is not a work tree, or it fails.
std::string git(const std::vector<std::string>& arguments) {
  if (std::string(PED_SOURCE_DIR).empty()) return "";
  std::vector<std::string> argv = {"git", "-C", PED_SOURCE_DIR};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  try {
    return trimmed(capture_output(argv));
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace

std::string source_revision() {
  if (const char* rev = std::getenv("PED_GIT_REV"); rev != nullptr && *rev != '\0') return rev;
  if (std::string rev = git({"rev-parse", "--short=12", "HEAD"}); !rev.empty()) {
    if (!git({"status", "--porcelain", "--untracked-files=no"}).empty()) rev += "-dirty";
    return rev;
  }
  return PED_GIT_REV_CONFIGURED;
}

std::string host_kind() {
  std::string model;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; model.empty() && std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      if (const std::size_t colon = line.find(':'); colon != std::string::npos) model = trimmed(line.substr(colon + 1));
    }
  }
  if (model.empty()) model = "unknown CPU";
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  return model + " x " + std::to_string(cpus > 0 ? cpus : 0) + " CPUs";
}

}  // namespace ped
