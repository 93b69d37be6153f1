#include "verify/junit.hpp"

#include <cstdint>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/errors.hpp"
#include "verify/report.hpp"

namespace ped::verify {

namespace {

// The length of the UTF-8 sequence starting at text[at] when it encodes a character XML 1.0 allows
// (no overlong form, no surrogate, at most U+10FFFF, not U+FFFE or U+FFFF); 0 otherwise.
std::size_t valid_utf8_length(std::string_view text, std::size_t at) {
  const auto lead = static_cast<unsigned char>(text[at]);
  std::size_t length = 0;
  std::uint32_t code = 0, smallest = 0;
  if (lead >= 0xc0 && lead < 0xe0) length = 2, code = lead & 0x1fu, smallest = 0x80;
  else if (lead >= 0xe0 && lead < 0xf0) length = 3, code = lead & 0x0fu, smallest = 0x800;
  else if (lead >= 0xf0 && lead < 0xf8) length = 4, code = lead & 0x07u, smallest = 0x10000;
  else return 0;
  if (at + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    const auto next = static_cast<unsigned char>(text[at + k]);
    if ((next & 0xc0u) != 0x80u) return 0;
    code = (code << 6) | (next & 0x3fu);
  }
  if (code < smallest || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff) || code == 0xfffe || code == 0xffff) {
    return 0;
  }
  return length;
}

std::string hex_escape(unsigned char byte) {
  static constexpr char hex[] = "0123456789abcdef";
  return std::string("\\x") + hex[byte >> 4] + hex[byte & 15];
}

std::string number(double value) { return format_number(value); }

std::string failure_message(const CheckRow& r) {
  std::ostringstream os;
  os << r.quantity << ": ";
  if (!r.metrics.comparable) {
    os << "not comparable (" << r.metrics.problem << "), tolerance " << number(r.tolerance);
  } else {
    os << "norm_rel_err " << number(r.metrics.norm_rel_err) << " > tolerance " << number(r.tolerance)
       << " (max_abs_err " << number(r.metrics.max_abs_err) << ", max_rel_err " << number(r.metrics.max_rel_err)
       << ")";
  }
  return os.str();
}

// Every column of the row, one per line, as the CSV holds them.
std::string row_body(const CheckRow& r) {
  std::ostringstream os;
  os << "op: " << r.op << "\nvariant: " << r.variant << "\ndtype: " << r.dtype << "\nshape: " << r.shape
     << "\nmask: " << r.mask << "\nreference: " << r.reference << "\nquantity: " << r.quantity
     << "\nmax_abs_err: " << number(r.metrics.max_abs_err) << "\nmax_rel_err: " << number(r.metrics.max_rel_err)
     << "\nnorm_rel_err: " << number(r.metrics.norm_rel_err) << "\ntolerance: " << number(r.tolerance)
     << "\npassed: " << (r.passed ? "true" : "false") << "\nseed: " << r.seed << "\ndetail: " << r.detail << "\n";
  return os.str();
}

bool could_not_run(const CheckRow& r) { return r.quantity == "*"; }

}  // namespace

std::string xml_escaped(std::string_view text, bool keep_line_breaks) {
  std::string out;
  out.reserve(text.size());
  std::size_t at = 0;
  while (at < text.size()) {
    const char c = text[at];
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x80) {
      const std::size_t length = valid_utf8_length(text, at);
      if (length == 0) {
        out += hex_escape(byte);
        ++at;
      } else {
        out.append(text.substr(at, length));
        at += length;
      }
      continue;
    }
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (keep_line_breaks && (c == '\n' || c == '\t')) out += c;
        else out += printable(text.substr(at, 1));  // escapes control bytes and DEL only
    }
    ++at;
  }
  return out;
}

std::string junit_class_name(const CheckRow& r) {
  return "verify." + r.op + (r.variant.empty() ? "" : "." + r.variant);
}

std::string junit_case_name(const CheckRow& r) {
  return r.dtype + " [" + r.shape + "]" + (r.mask.empty() ? "" : " mask=" + r.mask) + " seed=" + std::to_string(r.seed) +
         " vs " + r.reference + ": " + r.quantity;
}

std::string junit_xml(const std::vector<CheckRow>& rows, const std::map<std::string, double>& seconds_per_op) {
  struct Suite {
    std::vector<const CheckRow*> rows;
    std::size_t failures = 0, errors = 0;
  };
  std::vector<std::string> order;  // ops in the order the sweep ran them
  std::map<std::string, Suite> suites;
  std::size_t failures = 0, errors = 0;
  for (const CheckRow& r : rows) {
    auto [it, inserted] = suites.try_emplace(r.op);
    if (inserted) order.push_back(r.op);
    it->second.rows.push_back(&r);
    if (r.passed) continue;
    ++(could_not_run(r) ? it->second.errors : it->second.failures);
    ++(could_not_run(r) ? errors : failures);
  }
  double total_seconds = 0;
  for (const std::string& op : order) {
    if (auto t = seconds_per_op.find(op); t != seconds_per_op.end()) total_seconds += t->second;
  }
  auto attr = [](std::string_view text) { return xml_escaped(text, false); };
  auto text = [](std::string_view body) { return xml_escaped(body, true); };
  std::ostringstream os;
  os << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  os << "<testsuites name=\"verify\" tests=\"" << rows.size() << "\" failures=\"" << failures << "\" errors=\""
     << errors << "\" skipped=\"0\" time=\"" << number(total_seconds) << "\">\n";
  for (const std::string& op : order) {
    const Suite& s = suites[op];
    const auto t = seconds_per_op.find(op);
    os << "  <testsuite name=\"" << attr(op) << "\" tests=\"" << s.rows.size() << "\" failures=\"" << s.failures
       << "\" errors=\"" << s.errors << "\" skipped=\"0\" time=\"" << number(t == seconds_per_op.end() ? 0 : t->second)
       << "\">\n";
    for (const CheckRow* r : s.rows) {
      os << "    <testcase classname=\"" << attr(junit_class_name(*r)) << "\" name=\"" << attr(junit_case_name(*r))
         << "\"";
      if (r->passed) {
        os << "/>\n";
        continue;
      }
      const char* element = could_not_run(*r) ? "error" : "failure";
      const std::string message =
          could_not_run(*r) ? "the check could not run: " + r->detail : failure_message(*r);
      os << ">\n      <" << element << " message=\"" << attr(message) << "\" type=\""
         << (could_not_run(*r) ? "check_not_run" : r->metrics.comparable ? "above_tolerance" : "not_comparable")
         << "\">" << text(row_body(*r)) << "</" << element << ">\n    </testcase>\n";
    }
    os << "  </testsuite>\n";
  }
  os << "</testsuites>\n";
  return os.str();
}

void write_junit_atomic(const std::string& path, const std::vector<CheckRow>& rows,
                        const std::map<std::string, double>& seconds_per_op) {
  write_file_atomically(path, junit_xml(rows, seconds_per_op));
}

}  // namespace ped::verify
