#include "train/output_set.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "core/atomic_file.hpp"

namespace ped::train {
namespace fs = std::filesystem;

namespace {

constexpr const char* kPublishing = ".train-publish";
constexpr const char* kStagingPrefix = ".train-staging.";
constexpr const char* kManifest = "MANIFEST";

[[noreturn]] void fail(const std::string& what, const fs::path& path, int error) {
  throw std::runtime_error("train: " + what + " " + path.string() + ": " + std::strerror(error));
}

void sync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) fail("cannot open", path, errno);
  const bool synced = ::fsync(fd) == 0;
  const int error = errno;
  ::close(fd);
  if (!synced) fail("cannot fsync", path, error);
}

void move(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) fail("cannot rename " + from.string() + " to", to, errno);
}

// Moves every output of a committed set (`from`, holding its MANIFEST) into dir, removes the outputs
// the set lacks, then removes `from`. Idempotent: a kill part-way leaves it to be run again.
void finish_publishing(const fs::path& from, const fs::path& dir) {
  std::ifstream manifest(from / kManifest);
  if (!manifest) throw std::runtime_error("train: " + (from / kManifest).string() + " is missing; remove " + from.string());
  std::vector<std::string> made;
  for (std::string line; std::getline(manifest, line);) made.push_back(line);
  manifest.close();
  for (const char* name : kOutputNames) {
    if (fs::exists(from / name)) {
      move(from / name, dir / name);
      kill_point("publishing");
    } else if (std::find(made.begin(), made.end(), name) == made.end()) {
      fs::remove(dir / name);  // not made by this run: no file of an earlier run stays beside the set
    }
  }
  sync_path(dir, true);
  fs::remove_all(from);
}

bool is_stale_temp(const std::string& name) {
  if (name.starts_with(kStagingPrefix)) return true;
  for (const char* output : kOutputNames) {
    // ".loss.png.tmp.XXXXXX" (reports' atomic files, an earlier train), "checkpoint.bin.tmp.<pid>" (save_checkpoint)
    std::string temp = output;
    temp.append(".tmp.");
    if (name.starts_with(temp) || (name.starts_with(".") && name.substr(1).starts_with(temp))) return true;
  }
  return false;
}

}  // namespace

OutputSet::OutputSet(const fs::path& dir) : dir_(dir) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("train: cannot create the output folder " + dir_.string() + ": " + ec.message());
  if (fs::exists(dir_ / kPublishing)) {
    finish_publishing(dir_ / kPublishing, dir_);
    recovered_.push_back("finished publishing the outputs of an interrupted run");
  }
  std::vector<fs::path> stale;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) {
    if (is_stale_temp(entry.path().filename().string())) stale.push_back(entry.path());
  }
  for (const fs::path& path : stale) {
    fs::remove_all(path);
    recovered_.push_back("removed " + path.filename().string() + ", left by an interrupted run");
  }
}

OutputSet::~OutputSet() {
  if (published_ || staging_.empty()) return;
  std::error_code ignored;
  fs::remove_all(staging_, ignored);
}

const fs::path& OutputSet::staging() {
  if (staging_.empty()) {
    std::string pattern = (dir_ / kStagingPrefix).string() + "XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) fail("cannot create a staging folder in", dir_, errno);
    staging_ = pattern;
  }
  return staging_;
}

void OutputSet::publish() {
  staging();
  std::string made;
  for (const char* name : kOutputNames) {
    if (!fs::exists(staging_ / name)) continue;
    sync_path(staging_ / name, false);  // gnuplot's PNG is not synced by its writer
    made += std::string(name) + "\n";
  }
  ped::write_file_atomically(staging_ / kManifest, made);
  sync_path(staging_, true);
  kill_point("staged");
  move(staging_, dir_ / kPublishing);  // the commit point
  published_ = true;
  sync_path(dir_, true);
  finish_publishing(dir_ / kPublishing, dir_);
}

void kill_point(const char* stage) {
  const char* at = std::getenv("PED_TRAIN_KILL_AT");
  if (at != nullptr && std::strcmp(at, stage) == 0) std::raise(SIGKILL);
}

}  // namespace ped::train
