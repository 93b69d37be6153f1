#include "verify/report.hpp"

#include "core/atomic_file.hpp"
#include "core/csv.hpp"
#include "core/errors.hpp"
#include "core/schemas.hpp"

#include <cmath>
#include <iomanip>
#include <map>
#include <sstream>
#include <stdexcept>
#include <tuple>

namespace ped::verify {

const std::vector<std::string>& csv_columns() {
  static const std::vector<std::string> cols(schema::verify_columns.begin(), schema::verify_columns.end());
  return cols;
}

std::string format_number(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  std::ostringstream os;
  os << std::setprecision(17) << value;
  return os.str();
}

std::string csv_text(const std::vector<CheckRow>& rows) {
  using ped::csv_cell;
  std::ostringstream out;
  const auto& cols = csv_columns();
  for (std::size_t i = 0; i < cols.size(); ++i) out << (i ? "," : "") << cols[i];
  out << "\n";
  for (const CheckRow& r : rows) {
    out << csv_cell(r.op) << ',' << csv_cell(r.variant) << ',' << r.dtype << ',' << csv_cell(r.shape) << ','
        << csv_cell(r.mask) << ',' << r.reference << ',' << csv_cell(r.quantity) << ','
        << format_number(r.metrics.max_abs_err) << ',' << format_number(r.metrics.max_rel_err) << ','
        << format_number(r.metrics.norm_rel_err) << ',' << format_number(r.tolerance) << ','
        << (r.passed ? "true" : "false") << ',' << r.seed << ',' << csv_cell(ped::printable(r.detail)) << '\n';  // exception texts span lines

  }
  return out.str();
}

void write_csv_atomic(const std::string& path, const std::vector<CheckRow>& rows) {
  ped::write_file_atomically(path, csv_text(rows));
}

void print_summary(std::ostream& os, const std::vector<CheckRow>& rows) {
  struct Group {
    std::size_t checks = 0, failed = 0;
    double worst = 0, tolerance = 0;
    bool any_nonfinite = false;
  };
  using Key = std::tuple<std::string, std::string, std::string>;  // op[/variant], dtype, reference
  std::map<Key, Group> groups;
  std::vector<Key> order;
  for (const CheckRow& r : rows) {
    const Key key{r.variant.empty() ? r.op : r.op + "/" + r.variant, r.dtype, r.reference};
    auto [it, inserted] = groups.try_emplace(key);
    if (inserted) order.push_back(key);
    Group& g = it->second;
    ++g.checks;
    g.failed += r.passed ? 0 : 1;
    if (!r.metrics.comparable) g.any_nonfinite = true;
    else if (r.metrics.norm_rel_err >= g.worst) {
      g.worst = r.metrics.norm_rel_err;
      g.tolerance = r.tolerance;
    }
    if (g.tolerance == 0) g.tolerance = r.tolerance;
  }
  os << std::left << std::setw(34) << "op" << std::setw(10) << "dtype" << std::setw(19) << "reference" << std::right
     << std::setw(7) << "checks" << std::setw(7) << "failed" << std::setw(14) << "worst_rel" << std::setw(12)
     << "tolerance" << "  status\n";
  os << std::string(105, '-') << "\n";  // dtype 10 wide: "bfloat16" and a space
  std::size_t total_failed = 0;
  for (const Key& key : order) {
    const Group& g = groups[key];
    total_failed += g.failed;
    std::ostringstream worst, tol;
    worst << std::scientific << std::setprecision(2) << g.worst;
    tol << std::scientific << std::setprecision(1) << g.tolerance;
    os << std::left << std::setw(34) << std::get<0>(key) << std::setw(10) << std::get<1>(key) << std::setw(19)
       << std::get<2>(key) << std::right << std::setw(7) << g.checks << std::setw(7) << g.failed << std::setw(14)
       << (g.any_nonfinite ? "not finite" : worst.str()) << std::setw(12) << tol.str() << "  "
       << (g.failed ? "FAIL" : "ok") << "\n";
  }
  if (total_failed) {
    os << "\nFailed checks:\n";
    for (const CheckRow& r : rows) {
      if (r.passed) continue;
      os << "  " << r.op << (r.variant.empty() ? "" : "/" + r.variant) << " " << r.dtype << " [" << r.shape << "]"
         << (r.mask.empty() ? "" : " mask=" + r.mask) << " seed=" << r.seed << " vs " << r.reference << ": "
         << r.quantity << " norm_rel_err=" << format_number(r.metrics.norm_rel_err)
         << " max_abs_err=" << format_number(r.metrics.max_abs_err) << " tolerance=" << format_number(r.tolerance)
         << " (" << r.detail << ")\n";
    }
  }
  os << "\n" << rows.size() - total_failed << " passed, " << total_failed << " failed\n";
}

}  // namespace ped::verify
