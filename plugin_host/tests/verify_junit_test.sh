#!/bin/sh
# verify --junit with a deliberately wrong plugin (no_rowsum_term: dq, dk wrong) and a crashing one:
# exit 1 as without --junit; the XML is well-formed (xmllint), has one test case per CSV row, a
# <failure> per failed comparison naming its quantity, and an <error> per check that could not run
# (the crashing plugin's child processes).
# Usage: verify_junit_test.sh VERIFY PLUGIN_DIR WORK_DIR
set -u
verify=$1
plugin_dir=$2
work=$3
fail() {
  echo "FAIL: $*"
  exit 1
}
command -v xmllint >/dev/null || fail "xmllint not found (Debian package libxml2-utils, scripts/install-deps.sh)"
mkdir -p "$work" || exit 1
rm -f "$work/junit.csv" "$work/junit.xml"
"$verify" --plugin "$plugin_dir/libped_plugin_no_rowsum_term.so" --plugin "$plugin_dir/libped_plugin_crashes.so" \
  --variants no_rowsum_term,crashes --ops sdpa --shape N=5,Nk=7,H=2,Dh=4 --shape N=9,B=2,Dh=3 --seeds 1 \
  --masks causal --quiet --out "$work/junit.csv" --junit "$work/junit.xml" >"$work/junit.log" 2>&1
status=$?
[ "$status" -eq 1 ] || { cat "$work/junit.log"; fail "exit $status, expected 1"; }
grep -q "^junit: $work/junit.xml" "$work/junit.log" || fail "verify does not name the JUnit file it wrote"
xmllint --noout "$work/junit.xml" || fail "$work/junit.xml is not well-formed XML"

xpath() { xmllint --xpath "$1" "$work/junit.xml"; }
rows=$(($(wc -l <"$work/junit.csv") - 1))  # no detail holds a line break: printable() escapes them
# passed is column 12, after the detail-free columns; a quoted detail may hold commas, so count from the left
failed=$(awk -F, 'NR > 1 && $12 == "false"' "$work/junit.csv" | wc -l)
not_run=$(awk -F, 'NR > 1 && $7 == "*"' "$work/junit.csv" | wc -l)
[ "$(xpath 'count(//testcase)')" -eq "$rows" ] || fail "$(xpath 'count(//testcase)') test cases, $rows CSV rows"
[ "$(xpath 'string(/testsuites/@tests)')" -eq "$rows" ] || fail "testsuites tests= is not the $rows CSV rows"
[ "$(xpath 'count(//failure) + count(//error)')" -eq "$failed" ] ||
  fail "$(xpath 'count(//failure) + count(//error)') failures and errors, $failed failed CSV rows"
[ "$not_run" -gt 0 ] || fail "the crashing plugin left no check that could not run"
[ "$(xpath 'count(//error)')" -eq "$not_run" ] || fail "$(xpath 'count(//error)') errors, $not_run checks that did not run"
[ "$(xpath 'string(/testsuites/testsuite/@name)')" = sdpa ] || fail "the test suite is not named after op sdpa"
for q in dq dk; do
  [ "$(xpath "count(//testcase[@classname='verify.sdpa.no_rowsum_term']/failure[starts-with(@message, '$q: norm_rel_err ')])")" -gt 0 ] ||
    fail "no <failure> of no_rowsum_term whose message names $q"
done
xpath "string(//testcase[@classname='verify.sdpa.no_rowsum_term']/failure[starts-with(@message, 'dq: ')]/@message)" |
  grep -Eq '^dq: norm_rel_err [0-9.e+-]+ > tolerance 0.0001 \(max_abs_err [0-9.e+-]+, max_rel_err [0-9.e+-]+\)$' ||
  fail "the dq failure message does not give norm_rel_err, the tolerance and the other metrics"
[ "$(xpath "count(//testcase[@classname='verify.sdpa.no_rowsum_term' and contains(@name, 'vs libtorch: dv')]/*)")" -eq 0 ] ||
  fail "a dv test case of no_rowsum_term (dv is right) holds a failure"
xpath "string(//testcase[@classname='verify.sdpa.crashes']/error/@message)" | grep -Eq 'child process killed by signal (11|6)' ||
  fail "the crashed checks' <error> does not name the signal"
echo "ok: $rows test cases, $failed failed or not run, well-formed"
