// Running other programs (git, cmake, the bench executable, gnuplot) without a shell: arguments go
// to execvp as they are, so paths with spaces or quotes need no escaping.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ped {

struct ProcessOptions {
  std::optional<std::filesystem::path> working_directory;
  std::optional<std::filesystem::path> stdout_file;  // truncated; default: inherit
  std::optional<std::filesystem::path> stderr_file;  // truncated; default: inherit
  bool stderr_to_stdout = false;                     // both into stdout_file (a build log)
};

struct ProcessResult {
  bool started = false;  // false: the program was not found or could not be executed
  int exit_code = -1;    // exit status, or 128 + signal number when killed by a signal
  std::string error;     // why it did not start
};

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// Runs argv and returns its standard output; throws std::runtime_error naming the command, its exit
// code and its standard error when it fails to start or exits non-zero.
std::string capture_output(const std::vector<std::string>& argv,
                           const std::optional<std::filesystem::path>& working_directory = std::nullopt);

// "a b 'c d'": a command line for messages (not for a shell).
std::string describe_command(const std::vector<std::string>& argv);

// A directory made with mkdtemp under `parent` (default: the system temp directory), removed with
// everything in it when the object is destroyed unless keep() was called.
class TempDirectory {
 public:
  explicit TempDirectory(const std::string& prefix, const std::optional<std::filesystem::path>& parent = std::nullopt);
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;
  ~TempDirectory();
  const std::filesystem::path& path() const { return path_; }
  void keep() { keep_ = true; }

 private:
  std::filesystem::path path_;
  bool keep_ = false;
};

}  // namespace ped
