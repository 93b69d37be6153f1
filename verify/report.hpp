// The verify report: a CSV with one row per comparison, and a readable summary for the terminal.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "verify/metrics.hpp"

namespace ped::verify {

// The CSV header, in the column order of the file (DESIGN.md's columns, then `detail`).
const std::vector<std::string>& csv_columns();

// The report as CSV text: the header, then one line per row; cells quoted as ped::csv_cell.
std::string csv_text(const std::vector<CheckRow>& rows);

// Writes csv_text to `path` atomically (core/atomic_file: a temp file beside it, fsynced,
// renamed over `path`); cells quoted as ped::csv_cell. Throws
// std::runtime_error naming the path if it cannot be written; `path` is then untouched.
void write_csv_atomic(const std::string& path, const std::vector<CheckRow>& rows);

// Per op/variant x dtype x reference: checks, failures, worst normwise relative error and its
// tolerance; then every failed row with its detail.
void print_summary(std::ostream& os, const std::vector<CheckRow>& rows);

// A value as the CSV writes it (17 significant digits, NaN and inf spelled out).
std::string format_number(double value);

}  // namespace ped::verify
