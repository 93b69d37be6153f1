#include "core/atomic_file.hpp"

#include "core/errors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

namespace ped {
namespace fs = std::filesystem;

namespace {

std::string errno_text(int error) { return std::generic_category().message(error); }

// Creates "<dir>/.<name>.tmp.XXXXXX" with mkstemp (unique, never clobbers) and returns its fd.
int make_temp_beside(const fs::path& target, fs::path& temp_out) {
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "." + std::string.
  std::string name = ".";
  name += target.filename().string();
  name += ".tmp.XXXXXX";
  std::string pattern = (dir / name).string();
  const int fd = ::mkstemp(pattern.data());
  if (fd < 0) {
    const int error = errno;
    throw std::runtime_error(concat("make_temp_beside: cannot create a temp file for ", target, " in ", dir, ": ",
                                    errno_text(error)));
  }
  // mkstemp creates 0600; output files are ordinary readable files.
  ::fchmod(fd, 0644);
  temp_out = pattern;
  return fd;
}

void write_all_and_close(int fd, const fs::path& temp, std::string_view contents) {
  const char* data = contents.data();
  std::size_t left = contents.size();
  while (left > 0) {
    const ssize_t written = ::write(fd, data, left);
    if (written < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      throw std::runtime_error(concat("write_file_atomically: writing ", temp, " failed: ", errno_text(error)));
    }
    data += written;
    left -= static_cast<std::size_t>(written);
  }
  // fsync before rename: otherwise a crash could leave the renamed name pointing at empty blocks.
  const bool synced = ::fsync(fd) == 0;
  const int sync_error = errno;
  const bool closed = ::close(fd) == 0;  // closed whether or not fsync worked: no descriptor leak
  if (!synced || !closed) {
    const int error = synced ? errno : sync_error;
    throw std::runtime_error(concat("write_file_atomically: flushing ", temp, " failed: ", errno_text(error)));
  }
}

void rename_onto(const fs::path& temp, const fs::path& target) {
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    const int error = errno;
    throw std::runtime_error(concat("rename_onto: cannot rename ", temp, " to ", target, ": ", errno_text(error)));
  }
}

}  // namespace

void write_file_atomically(const fs::path& target, std::string_view contents) {
  StagedFiles files;
  files.add(target, contents);
  files.commit();
}

StagedFiles::~StagedFiles() {
  for (const Entry& entry : entries_) {
    std::error_code ignored;
    fs::remove(entry.temp, ignored);
  }
}

void StagedFiles::add(const fs::path& target, std::string_view contents) {
  fs::path temp;
  const int fd = make_temp_beside(target, temp);
  entries_.push_back({temp, target});
  write_all_and_close(fd, temp, contents);
}

fs::path StagedFiles::reserve(const fs::path& target) {
  fs::path temp;
  const int fd = make_temp_beside(target, temp);
  ::close(fd);
  entries_.push_back({temp, target});
  return temp;
}

void StagedFiles::discard(const fs::path& temp) {
  const auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.temp == temp; });
  if (it == entries_.end()) return;
  std::error_code ignored;
  fs::remove(it->temp, ignored);
  entries_.erase(it);
}

void StagedFiles::commit() {
  // Rename one by one, dropping each entry once renamed so that a failure part-way leaves the
  // remaining temps to the destructor and the renamed files complete.
  while (!entries_.empty()) {
    rename_onto(entries_.front().temp, entries_.front().target);
    entries_.erase(entries_.begin());
  }
}

}  // namespace ped
