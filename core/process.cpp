#include "core/process.hpp"

#include "core/errors.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>

extern char** environ;

namespace ped {
namespace fs = std::filesystem;

std::string describe_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& arg : argv) {
    if (!out.empty()) out += ' ';
    out += arg.find_first_of(" \t'\"") == std::string::npos ? arg : "'" + arg + "'";
  }
  return out;
}

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
  if (argv.empty()) throw_invalid("run_process", "empty command");
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (options.stdout_file) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, options.stdout_file->c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  if (options.stderr_to_stdout) {
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  } else if (options.stderr_file) {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, options.stderr_file->c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  // posix_spawn_file_actions_addchdir_np (glibc >= 2.29) changes directory in the child only.
  if (options.working_directory) {
    posix_spawn_file_actions_addchdir_np(&actions, options.working_directory->c_str());
  }
  ProcessResult result;
  pid_t pid = 0;
  const int spawn_error = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawn_error != 0) {
    result.error = concat("cannot run ", describe_command(argv), ": ", std::generic_category().message(spawn_error));
    return result;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      result.error = concat("waitpid for ", describe_command(argv), " failed: ", std::generic_category().message(errno));
      return result;
    }
  }
  result.started = true;
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

std::string capture_output(const std::vector<std::string>& argv, const std::optional<fs::path>& working_directory) {
  TempDirectory scratch("ped-report-capture-");
  const fs::path out_file = scratch.path() / "stdout";
  const fs::path err_file = scratch.path() / "stderr";
  const ProcessResult result = run_process(argv, {working_directory, out_file, err_file, false});
  const auto slurp = [](const fs::path& file) {
    std::ifstream in(file);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  };
  if (!result.started) throw std::runtime_error(concat("capture_output: ", result.error));
  if (result.exit_code != 0) {
    throw std::runtime_error(concat("capture_output: ", describe_command(argv), " exited with ", result.exit_code, ": ",
                                    slurp(err_file)));
  }
  return slurp(out_file);
}

TempDirectory::TempDirectory(const std::string& prefix, const std::optional<fs::path>& parent) {
  const fs::path base = parent.value_or(fs::temp_directory_path());
  std::string pattern = (base / (prefix + "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    const int error = errno;
    throw std::runtime_error(concat("TempDirectory: cannot create ", pattern, ": ", std::generic_category().message(error)));
  }
  path_ = pattern;
}

TempDirectory::~TempDirectory() {
  if (keep_) return;
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

}  // namespace ped
