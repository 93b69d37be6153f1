# shellcheck shell=bash
# Sourced by the sweep scripts: finds bench, verify and report in DIR, either a build tree
# (DIR/bench/bench, DIR/verify/verify, DIR/reports/report) or an installed bin directory
# (DIR/bench, DIR/verify, DIR/report: cmake --install's PREFIX/bin). Sets bench, verify, report;
# on failure prints why, naming the script ($1), and returns 2.
find_programs() {
  local script=$1 dir=$2
  if [ -x "$dir/bench/bench" ] || [ -x "$dir/verify/verify" ] || [ -x "$dir/reports/report" ]; then
    bench=$dir/bench/bench verify=$dir/verify/verify report=$dir/reports/report
  else
    bench=$dir/bench verify=$dir/verify report=$dir/report
  fi
  local program
  for program in "$bench" "$verify" "$report"; do
    if [ ! -x "$program" ] || [ -d "$program" ]; then
      echo "$script: $program not found: --build-dir takes a build tree (cmake --build --preset release) or an installed bin directory" >&2
      return 2
    fi
  done
}
