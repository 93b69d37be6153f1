// Google Benchmark's numeric flags, checked before benchmark::Initialize sees them: version 1.7.1
// turns --benchmark_repetitions=-1 into an uncaught std::length_error (abort) and
// --benchmark_min_time=nan into a run that never ends, and keeps the last of repeated flags.
#pragma once

#include <string>
#include <vector>

namespace ped::bench {

// The first problem with the numeric --benchmark_* flags among args (argv without the program name),
// as "<program>: --benchmark_min_time expects a finite number in (0, 86400], got 'nan'", or "" when
// there is none. Checked: --benchmark_repetitions (an integer in [1, 100000]), --benchmark_min_time
// (a finite number in (0, 86400]) and --benchmark_min_warmup_time (a finite number in [0, 86400]),
// each given at most once; other flags are left to Google Benchmark.
std::string benchmark_flag_error(const std::vector<std::string>& args, const std::string& program);

}  // namespace ped::bench
