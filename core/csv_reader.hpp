// Named-column CSV reading on top of Ben Strasser's Fast C++ CSV Parser (io::CSVReader).
//
// Columns are found by name in the header (extra columns are ignored, so files may grow), quoted
// cells ("a,b", with "" for a quote) are unescaped, blank lines and lines starting with '#' are
// skipped. Every cell is read as text and converted here with std::from_chars, strictly: the
// parser's own float conversion reads an empty cell as 0 and loses digits. The parser works on
// NUL-terminated lines, so a NUL byte would silently cut a line short (or drop it): a text holding
// one is refused before parsing. Every failure becomes an InputError "FILE:LINE: what, in column C:
// value". Only .cpp files include this header.
#pragma once

#include "core/errors.hpp"

#include <libfccp/csv.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

namespace ped::csv {

// One data row: its cells by the column order given to read_columns, and converters whose errors
// name the file, the line and the column.
template <std::size_t N>
class Row {
 public:
  Row(const std::filesystem::path& file, std::size_t line, const std::array<std::string, N>& cells,
      const std::array<std::string_view, N>& names)
      : file_(file), line_(line), cells_(cells), names_(names) {}

  std::size_t line() const { return line_; }
  const std::string& text(std::size_t column) const { return cells_[column]; }

  // The text of a cell that holds a name or a label: refused when it holds a control character.
  const std::string& label(std::size_t column) const {
    const std::string control = first_control_character(cells_[column]);
    if (!control.empty()) fail(column, concat("control character ", control, " in text (expected printable text)"));
    return cells_[column];
  }

  [[noreturn]] void fail(std::size_t column, std::string_view what) const {
    throw_input_error(file_.string(), ":", line_, ": ", what, " in column '", names_[column], "': '",
                      printable(cells_[column]), "'");
  }

  double number(std::size_t column) const {
    const std::string& cell = cells_[column];
    double value = 0.0;
    const auto [end, error] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
    // from_chars accepts "nan" and "inf": written on purpose for a quantity that was not measured.
    if (cell.empty() || error != std::errc() || end != cell.data() + cell.size()) fail(column, "not a number");
    return value;
  }

  std::int64_t integer(std::size_t column) const {
    const std::string& cell = cells_[column];
    std::int64_t value = 0;
    const auto [end, error] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
    if (cell.empty() || error != std::errc() || end != cell.data() + cell.size()) fail(column, "not an integer");
    return value;
  }

  bool boolean(std::size_t column) const {
    const std::string& cell = cells_[column];
    if (cell == "true" || cell == "True" || cell == "TRUE" || cell == "1") return true;
    if (cell == "false" || cell == "False" || cell == "FALSE" || cell == "0") return false;
    fail(column, "not true or false");
  }

 private:
  const std::filesystem::path& file_;
  std::size_t line_;
  const std::array<std::string, N>& cells_;
  const std::array<std::string_view, N>& names_;
};

// Reads `text` (named `source` in messages), whose header must hold every name in `names` for which
// `required` is true, and calls on_row(const Row<N>&) for each data row. A missing optional column
// reads as an empty cell. Returns the number of data rows.
template <std::size_t N, class OnRow>
std::size_t read_columns(const std::filesystem::path& source, std::string_view text,
                         const std::array<std::string_view, N>& names, const std::array<bool, N>& required,
                         OnRow&& on_row) {
  using TextReader = io::CSVReader<N, io::trim_chars<' ', '\t'>, io::double_quote_escape<',', '"'>,
                                   io::throw_on_overflow, io::single_and_empty_line_comment<'#'>>;
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    const std::size_t line_start = text.rfind('\n', nul) == std::string_view::npos ? 0 : text.rfind('\n', nul) + 1;
    std::size_t line = 1;
    for (std::size_t i = 0; i < line_start; ++i) line += text[i] == '\n' ? 1 : 0;
    throw_input_error(source.string(), ":", line, ": NUL byte at byte ", nul - line_start + 1,
                      " of the line (expected text)");
  }
  // On a last line without a line break the parser looks at the byte after the text (uninitialised
  // memory of its buffer): give it the line break.
  std::string terminated(text);
  if (!terminated.empty() && terminated.back() != '\n') terminated += '\n';
  std::array<std::string, N> cells;
  std::size_t rows = 0;
  try {
    TextReader reader(source.string(), terminated.data(), terminated.data() + terminated.size());
    try {
      std::apply([&](auto... name) { reader.read_header(io::ignore_extra_column | io::ignore_missing_column,
                                                        std::string(name)...); },
                 names);
    } catch (const io::error::header_missing&) {
      throw_input_error(source.string(), ":1: empty file: expected a header line naming the columns");
    } catch (const io::error::duplicated_column_in_header& error) {
      throw_input_error(source.string(), ":", reader.get_file_line(), ": column '", error.column_name,
                        "' appears twice in the header");
    } catch (const io::error::escaped_string_not_closed&) {
      throw_input_error(source.string(), ":", reader.get_file_line(), ": a quoted cell of the header is not closed");
    }
    std::string missing;
    for (std::size_t c = 0; c < N; ++c) {
      if (required[c] && !reader.has_column(std::string(names[c]))) {
        missing += (missing.empty() ? "'" : ", '") + std::string(names[c]) + "'";
      }
    }
    if (!missing.empty()) throw_input_error(source.string(), ":", reader.get_file_line(), ": header lacks column(s) ", missing);

    for (;;) {
      for (std::string& cell : cells) cell.clear();  // the parser leaves cells of missing columns untouched
      bool got_row = false;
      try {
        got_row = std::apply([&](auto&... cell) { return reader.read_row(cell...); }, cells);
      } catch (const io::error::too_few_columns&) {
        throw_input_error(source.string(), ":", reader.get_file_line(), ": ragged row: fewer cells than the header");
      } catch (const io::error::too_many_columns&) {
        throw_input_error(source.string(), ":", reader.get_file_line(), ": ragged row: more cells than the header");
      } catch (const io::error::escaped_string_not_closed&) {
        throw_input_error(source.string(), ":", reader.get_file_line(), ": a quoted cell is not closed");
      }
      if (!got_row) break;
      ++rows;
      on_row(Row<N>(source, reader.get_file_line(), cells, names));
    }
  } catch (const io::error::base& error) {
    // Anything the parser reports that is not handled above (an over-long line).
    throw_input_error(source.string(), ": ", printable(error.what()));
  }
  return rows;
}

// The whole of `file` as bytes; InputError when it is not a readable regular file ("FILE: cannot
// open[ WHAT]: no such file", "FILE: cannot read[ WHAT]", WHAT naming what the file should be).
inline std::string read_text_file(const std::filesystem::path& file, std::string_view what = "") {
  const std::string named = what.empty() ? std::string() : concat(" ", what);
  std::error_code status_error;
  if (!std::filesystem::is_regular_file(file, status_error)) {
    throw_input_error(file.string(), ": cannot open", named, ": no such file");
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) throw_input_error(file.string(), ": cannot read", named);
  return text.str();
}

}  // namespace ped::csv
