#!/bin/sh
# An allocation that fails ends verify with a message and exit 1, not an uncaught std::bad_alloc.
# The memory budget is raised to its largest value so that the estimate lets layer_norm at
# N = D = 1e6 (an 8 TB input) through; the allocation then fails: under a virtual memory limit of
# ~8 GB (whatever the kernel's overcommit policy), or under AddressSanitizer through
# allocator_may_return_null (the limit would starve its shadow memory). Nothing is written.
# Usage: out_of_memory_exit_test.sh VERIFY [limit]   ("limit": apply the virtual memory limit)
set -u
verify=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/verify-oom.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
if [ "${2:-}" = limit ]; then ulimit -v 8000000 || exit 1; fi
"$verify" --ops layer_norm --shape N=1000000,D=1000000 --memory-budget-gib 1048576 --quiet --out out.csv >stdout.txt 2>stderr.txt
status=$?
cat stderr.txt
[ "$status" -eq 1 ] || { echo "FAIL: exit $status, expected 1"; exit 1; }
grep -q '^verify: out of memory' stderr.txt || { echo "FAIL: no 'verify: out of memory' message"; exit 1; }
[ ! -e out.csv ] || { echo "FAIL: out.csv was written"; exit 1; }
echo "ok: exit 1 with a message"
