#!/bin/sh
# A failed check makes verify exit 1, and its CSV and summary name the failing quantity.
# --tolerance-scale 1e-9 holds layer norm's float backward to 1e-13 against finite differences (its
# tolerance 1e-4 times 1e-9), far below the float rounding of its gradients (order 1e-7): dx fails.
# The same command without the scale passes, so the failure comes from the tightened tolerance.
# Usage: failed_check_exit_test.sh VERIFY
set -u
verify=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/verify-exit.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail() {
  echo "FAIL: $*"
  exit 1
}
set -- --ops layer_norm --shape N=3,D=5 --seeds 1 --dtypes float --references finite_difference --quiet

"$verify" "$@" --out pass.csv >pass.txt 2>&1
status=$?
[ "$status" -eq 0 ] || { cat pass.txt; fail "at the default tolerances: exit $status, expected 0"; }

"$verify" "$@" --tolerance-scale 1e-9 --out fail.csv >fail.txt 2>&1
status=$?
cat fail.txt
[ "$status" -eq 1 ] || fail "with --tolerance-scale 1e-9: exit $status, expected 1"
[ -f fail.csv ] || fail "no CSV written for a run whose checks failed"
# CSV columns: op, variant, dtype, shape, mask, reference, quantity, max_abs_err, max_rel_err,
# norm_rel_err, tolerance, passed, seed, detail
awk -F, '$1 == "layer_norm" && $3 == "float" && $6 == "finite_difference" && $7 == "dx" &&
         $11 + 0 < 2e-13 && $10 + 0 > $11 + 0 && $12 == "false" { found = 1 } END { exit !found }' fail.csv ||
  fail "fail.csv has no failed dx row of layer_norm with the scaled tolerance 1e-13"
grep -q 'tolerance 0.0001 scaled by 1e-09' fail.csv || fail "the failed rows do not say their tolerance was scaled"
grep -q 'layer_norm float \[N=3 D=5\] seed=1 vs finite_difference: dx norm_rel_err=' fail.txt ||
  fail "the summary does not name the failed dx check"
echo "ok: exit 1, dx named in the CSV and the summary"
