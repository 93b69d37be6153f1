#!/bin/sh
# Runs one row of contract_cases.txt and checks the command-line contract:
#   - the process exits with the row's status (never on a signal, never through an uncaught exception);
#   - the first line of its stderr contains every one of the row's words (the option, its value, ...);
#   - it leaves its working directory empty: nothing written, not even a temp file (TMPDIR points there).
# Usage: run_contract_case.sh TABLE ROW PROGRAM=PATH...
# The PROGRAM=PATH pairs map the table's program names to executables; a row whose program is not
# among them (a target this build leaves out) is skipped with status 77.
set -u
table=$1
row=$2
shift 2

line=$(awk -F'|' -v row="$row" '{ name = $1; gsub(/^[ \t]+|[ \t]+$/, "", name); if (name == row) print }' "$table")
if [ -z "$line" ] || [ "$(printf '%s\n' "$line" | wc -l)" -ne 1 ]; then
  echo "contract: row '$row' is not exactly one line of $table" >&2
  exit 1
fi
trim() { printf '%s' "$1" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//'; }
program=$(trim "$(printf '%s' "$line" | cut -d'|' -f2)")
expected=$(trim "$(printf '%s' "$line" | cut -d'|' -f3)")
needles=$(printf '%s' "$line" | cut -d'|' -f4)
arguments=$(printf '%s' "$line" | cut -d'|' -f5-)

executable=
for pair in "$@"; do
  case $pair in "$program="*) executable=${pair#"$program="} ;; esac
done
if [ -z "$executable" ]; then
  echo "contract: $program is not built here; row '$row' skipped"
  exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cli-contract.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
mkdir "$work/run"
# The row's arguments are sh words ('' is an empty argument); eval turns them into "$@".
eval "set -- $arguments"
printf 'contract: %s:' "$row"
printf ' %s' "$program" "$@"
printf '\n'
(cd "$work/run" && TMPDIR="$work/run" exec "$executable" "$@") >"$work/stdout" 2>"$work/stderr"
status=$?

failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}
if [ "$status" -gt 128 ]; then
  fail "ended on signal $((status - 128)) (exit status $status), expected exit $expected"
elif [ "$status" -ne "$expected" ]; then
  fail "exit status $status, expected $expected"
fi
if grep -q 'terminate called' "$work/stderr"; then
  fail "ended on an uncaught exception"
fi
first_line=$(head -n 1 "$work/stderr")
eval "set -- $needles"
for needle in "$@"; do
  case $first_line in
    *"$needle"*) ;;
    *) fail "the first line of stderr does not contain '$needle'" ;;
  esac
done
left=$(cd "$work/run" && find . -mindepth 1 | head -n 20)
if [ -n "$left" ]; then
  fail "files were written: $(printf '%s' "$left" | tr '\n' ' ')"
fi
echo "exit status: $status"
echo "stderr (first lines):"
head -n 5 "$work/stderr" | sed 's/^/  /'
exit $failed
