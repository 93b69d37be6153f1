// Atomic output: every file the project writes appears complete or not at all.
//
// A file is written to a temp file in its target's directory (so rename(2) stays on one file
// system and is atomic), flushed with fsync, then renamed over the target. StagedFiles extends this
// to a set of files: all are staged first, and only when every one of them is complete are they
// renamed into place; if anything fails before commit(), the destructor removes the temp files.
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

namespace ped {

void write_file_atomically(const std::filesystem::path& target, std::string_view contents);

class StagedFiles {
 public:
  StagedFiles() = default;
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;
  ~StagedFiles();  // removes every temp file that commit() has not renamed

  // Writes `contents` to a temp file beside `target`; the target itself is untouched until commit().
  void add(const std::filesystem::path& target, std::string_view contents);

  // Creates an empty temp file beside `target` for another program (gnuplot) to fill, and returns
  // its path; it is renamed to `target` on commit() unless discard() is called first.
  std::filesystem::path reserve(const std::filesystem::path& target);
  void discard(const std::filesystem::path& temp);

  // Renames every staged temp file onto its target, in the order staged.
  void commit();

 private:
  struct Entry {
    std::filesystem::path temp;
    std::filesystem::path target;
  };
  std::vector<Entry> entries_;
};

}  // namespace ped
