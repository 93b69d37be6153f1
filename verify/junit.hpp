// The verify report as JUnit XML, the format CI servers render as test results (GitLab's
// artifacts:reports:junit, GitHub test reporters, Jenkins' junit step).
//
// <testsuites name="verify"> holds one <testsuite> per op; every CSV row is one <testcase>:
//   classname  "verify.<op>.<variant>" ("verify.<op>" for a reference layer)
//   name       "<dtype> [<shape>] mask=<mask> seed=<seed> vs <reference>: <quantity>", the CSV
//              columns that, with op and variant, make a row unique
// A failed row is a <failure> whose message names the quantity, norm_rel_err against the
// tolerance and the other error metrics, with every column of the row in its body; a check that
// could not run (quantity "*": an exception, a plugin's error code, a crashed child process) is an
// <error> instead. Nothing is skipped: the CSV has no skipped rows.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "verify/metrics.hpp"

namespace ped::verify {

// Text as XML character data or an attribute value: & < > " ' as entities; a control byte,
// a byte that is not part of valid UTF-8 and a character XML 1.0 forbids as the printable() escape
// \xNN (reports/errors.hpp). With `keep_line_breaks`, tab and newline stay as they are (element
// text); otherwise they are escaped too (an attribute value's line breaks would be normalised away).
std::string xml_escaped(std::string_view text, bool keep_line_breaks = false);

// A row's test case name and class name, as described above.
std::string junit_case_name(const CheckRow& row);
std::string junit_class_name(const CheckRow& row);

// The document. `seconds_per_op` gives each suite's time (an op missing from it: 0).
std::string junit_xml(const std::vector<CheckRow>& rows, const std::map<std::string, double>& seconds_per_op = {});

// Writes junit_xml to `path` atomically (a temp file beside it, renamed over `path`); throws
// std::runtime_error naming the path if it cannot be written, `path` then untouched.
void write_junit_atomic(const std::string& path, const std::vector<CheckRow>& rows,
                        const std::map<std::string, double>& seconds_per_op = {});

}  // namespace ped::verify
