// CSV primitives of the files the project writes: cell quoting and number formatting that the
// readers (core/csv_reader.hpp) take back unchanged.
#pragma once

#include <string>

namespace ped {

// CSV cell text: quoted when it holds a comma or a quote ("" escapes a quote), starts with '#' or
// starts or ends with a blank. Throws std::invalid_argument on a line break or a NUL byte, which the
// line-based readers cannot read back.
std::string csv_cell(const std::string& text);
// Shortest text that reads back to the same double (std::to_chars); "nan", "inf" for those.
std::string format_number(double value);

}  // namespace ped
