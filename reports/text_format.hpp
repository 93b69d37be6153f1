// Human-readable numbers for tables: durations, byte counts, fixed-point and significant digits.
#pragma once

#include <string>

namespace ped::reports {

// 1234567 -> "1.235 ms"; 4 significant digits, unit ns, us, ms or s. "n/a" for NaN.
std::string format_duration_ns(double ns);
// 3145728 -> "3.00 MiB"; binary units. "n/a" for NaN.
std::string format_bytes(double bytes);
// std::fixed with `decimals` digits. "n/a" for NaN.
std::string format_fixed(double value, int decimals);
// 4 significant digits, scientific when far from 1 (p-values, errors). "n/a" for NaN.
std::string format_significant(double value, int digits = 4);

}  // namespace ped::reports
