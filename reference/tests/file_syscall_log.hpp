// A record of the fsync and rename calls this process makes, for tests of durable writes.
//
// file_syscall_log.cpp defines fsync and rename themselves: linked into a test executable, they take
// the place of the C library's for every caller in it (the reference library is linked statically),
// forward to the kernel, and append one line per call while recording is on:
//   "fsync <path of the descriptor>"   "rename <from> <to>"
#pragma once

#include <string>
#include <vector>

namespace ped::test {

void start_file_syscall_log();
std::vector<std::string> stop_file_syscall_log();  // the lines since start, in call order

}  // namespace ped::test
