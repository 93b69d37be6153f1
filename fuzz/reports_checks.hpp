// The rules of reports/README.md ("File formats"), written out again for the fuzz targets of the
// reports/ readers, so that a reader that lets a row through without checking it is caught.
#pragma once

#include "reports/csv_io.hpp"
#include "reports/gbench_json.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace ped::fuzz {

// Each fails the target (fuzz_target.hpp) naming the row and the rule it breaks.
void check_benchmark_rows(std::string_view target, const std::vector<reports::BenchmarkRow>& rows);
void check_samples(std::string_view target, const std::vector<reports::Sample>& samples);
void check_verify_rows(std::string_view target, const std::vector<reports::VerifyRow>& rows);
void check_gbench_run(std::string_view target, const reports::GbenchRun& run);

// `text` holds no NUL byte, and every data line of it became a row: the reader dropped none. A data line is any line after the
// header that is neither blank (spaces and tabs only) nor a comment ('#' first); lines end at '\n',
// a '\r' before it is dropped, and a UTF-8 byte order mark at the start is skipped.
void check_row_count(std::string_view target, std::string_view text, std::size_t rows);

// What the writers wrote reads back as the same values, and writing those again gives the same text.
void check_benchmark_round_trip(std::string_view target, const std::vector<reports::BenchmarkRow>& rows);
void check_samples_round_trip(std::string_view target, const std::vector<reports::Sample>& samples);

// Runs `read`, returning true when it returned and false when it threw InputError with a proper
// message for `source`; any other exception fails the target.
template <class Read>
bool read_or_refuse(std::string_view target, std::string_view source, Read&& read);

}  // namespace ped::fuzz

#include "fuzz/fuzz_target.hpp"
#include "core/errors.hpp"

#include <exception>
#include <typeinfo>

namespace ped::fuzz {

template <class Read>
bool read_or_refuse(std::string_view target, std::string_view source, Read&& read) {
  try {
    read();
    return true;
  } catch (const ped::InputError& error) {
    check_error_message(target, error.what(), source);
    return false;
  } catch (const std::exception& error) {
    fail(target, std::string("threw ") + typeid(error).name() + " instead of InputError: " + error.what());
  } catch (...) {
    fail(target, "threw something that is not a std::exception");
  }
}

}  // namespace ped::fuzz
