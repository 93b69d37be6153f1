// check_one in a child process: the rows travel back through a pipe as length-prefixed fields;
// a child that crashes or exits becomes one failed row naming the signal or status and the case.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>

#include "plugin_host/child_process.hpp"
#include "verify/checks.hpp"

namespace ped::verify {

namespace {

void put(std::string& out, const std::string& field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
}

// %a: hexadecimal, exact for every double, NaN and infinities included; strtod reads it back.
std::string exact(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%a", value);
  return text;
}

class Reader {
 public:
  explicit Reader(const std::string& text) : text_(text) {}
  bool done() const { return at_ >= text_.size(); }
  std::string field() {
    const std::size_t colon = text_.find(':', at_);
    if (colon == std::string::npos) throw std::runtime_error("malformed rows from the child process");
    const std::size_t size = std::stoull(text_.substr(at_, colon - at_));
    if (colon + 1 + size > text_.size()) throw std::runtime_error("truncated rows from the child process");
    std::string value = text_.substr(colon + 1, size);
    at_ = colon + 1 + size;
    return value;
  }
  double number() { return std::strtod(field().c_str(), nullptr); }

 private:
  const std::string& text_;
  std::size_t at_ = 0;
};

std::string encode(const std::vector<CheckRow>& rows) {
  std::string out;
  for (const CheckRow& r : rows) {
    put(out, r.reference);
    put(out, r.quantity);
    put(out, exact(r.metrics.max_abs_err));
    put(out, exact(r.metrics.max_rel_err));
    put(out, exact(r.metrics.norm_rel_err));
    put(out, r.metrics.comparable ? "1" : "0");
    put(out, r.metrics.problem);
    put(out, exact(r.tolerance));
    put(out, r.passed ? "1" : "0");
    put(out, r.detail);
  }
  return out;
}

std::vector<CheckRow> decode(const std::string& text) {
  std::vector<CheckRow> rows;
  Reader in(text);
  while (!in.done()) {
    CheckRow r;
    r.reference = in.field();
    r.quantity = in.field();
    r.metrics.max_abs_err = in.number();
    r.metrics.max_rel_err = in.number();
    r.metrics.norm_rel_err = in.number();
    r.metrics.comparable = in.field() == "1";
    r.metrics.problem = in.field();
    r.tolerance = in.number();
    r.passed = in.field() == "1";
    r.detail = in.field();
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace

std::vector<CheckRow> check_one_in_child(const Problem& p, Dtype dtype, Reference reference,
                                         const FiniteDifferenceOptions& options, std::chrono::milliseconds time_limit) {
  const plugin::ChildOutcome outcome = plugin::run_in_child(
      [&] { return encode(check_one(p, dtype, reference, options)); }, {.time_limit = time_limit});
  if (outcome.completed) return decode(outcome.output);
  const std::string the_case = p.op + (p.variant.empty() ? "" : "/" + p.variant) + " " + to_string(dtype) + " [" +
                               p.shape + "]" + (p.mask.empty() ? "" : " mask=" + p.mask) +
                               " seed=" + std::to_string(p.seed) + " vs " + to_string(reference);
  const std::string detail = "child process " + outcome.failure + " while checking " + the_case;
  std::cerr << "verify: " << detail << "; the other checks go on"
            << (outcome.timed_out ? " (verify --plugin-timeout sets the limit)" : "") << "\n";
  return {failed_check_row(p, dtype, reference, detail)};
}

}  // namespace ped::verify
