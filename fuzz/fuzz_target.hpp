// What every fuzz target shares: the libFuzzer entry point, and how a target reports a failure.
//
// A target is handed arbitrary bytes. A reader that refuses them with its own error type has done its
// job; anything else is a failure: a crash or sanitizer report (found by the tools), an exception of
// another type, an error message that does not start with the input's name on one line, or a read
// that accepted what the reader's own rules refuse. The target checks those rules itself, written
// out independently of the reader's code, and calls fail() on a violation, which aborts: libFuzzer
// keeps the input as a crash, and the corpus driver's test fails naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace ped::fuzz {

// The corpus file being run (set by the corpus driver; empty under libFuzzer, which names it itself).
std::string& current_input();

[[noreturn]] void fail(std::string_view target, const std::string& what);

// Fails unless `message`, an error the reader threw for the input named `source`, is one line
// (no control character at all) that starts with `source`.
void check_error_message(std::string_view target, std::string_view message, std::string_view source);

// True when `text` holds a byte below 0x20 or 0x7f.
bool has_control_character(std::string_view text);

// a == b, or both NaN.
inline bool same_number(double a, double b) { return a == b || (a != a && b != b); }

}  // namespace ped::fuzz
