#!/bin/sh
# expect_run.sh STATUSES LOG [CHECK...] -- COMMAND [ARGUMENT...]
#
# Runs COMMAND with its standard output and error into the file LOG, then passes (exit 0) when its
# exit status is one of the comma-separated STATUSES and every CHECK holds:
#   REGEX          some line of LOG matches the extended regular expression
#   !REGEX         no line of LOG matches it
#   @FILE:REGEX    some line of FILE matches it (FILE must exist)
# Otherwise prints what failed and LOG, and exits 1.
set -u
if [ $# -lt 4 ]; then
  echo "usage: $0 STATUSES LOG [CHECK...] -- COMMAND [ARGUMENT...]" >&2
  exit 2
fi
statuses=$1
log=$2
shift 2
checks_file=$(mktemp) || exit 2
trap 'rm -f "$checks_file"' EXIT
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  printf '%s\n' "$1" >>"$checks_file"
  shift
done
if [ $# -eq 0 ]; then
  echo "$0: no -- COMMAND" >&2
  exit 2
fi
shift
"$@" >"$log" 2>&1
status=$?
failed=0
case ",$statuses," in
  *",$status,"*) ;;
  *) echo "FAIL: exit status $status, expected one of $statuses"; failed=1 ;;
esac
while IFS= read -r check; do
  case "$check" in
    !*)
      if grep -Eq -e "${check#!}" "$log"; then echo "FAIL: output matches '${check#!}'"; failed=1; fi ;;
    @*)
      spec=${check#@}
      file=${spec%%:*}
      regex=${spec#*:}
      if [ ! -f "$file" ]; then
        echo "FAIL: $file was not written"; failed=1
      elif ! grep -Eq -e "$regex" "$file"; then
        echo "FAIL: no line of $file matches '$regex'"; failed=1
      fi ;;
    *)
      if ! grep -Eq -e "$check" "$log"; then echo "FAIL: no line of the output matches '$check'"; failed=1; fi ;;
  esac
done <"$checks_file"
if [ $failed -ne 0 ]; then
  echo "--- command: $*"
  echo "--- output ($log):"
  cat "$log"
  exit 1
fi
exit 0
