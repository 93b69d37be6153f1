#!/bin/sh
# bench_plugin_report.sh BENCH REPORT OUTDIR -- BENCH_ARGUMENTS...
#
# A plugin from the benchmark run to the report: runs BENCH with the arguments (which load a plugin
# named "simple" and select it with flash), converts its JSON with `report convert`, summarizes with
# `report summarize`, and checks that the plugin's variant is in bench.csv and in
# summary.md next to flash. Exit 0 when it is, 1 otherwise.
set -u
if [ $# -lt 4 ] || [ "$4" != "--" ]; then
  echo "usage: $0 BENCH REPORT OUTDIR -- BENCH_ARGUMENTS..." >&2
  exit 2
fi
bench=$1
report=$2
outdir=$3
shift 4
rm -rf "$outdir"
mkdir -p "$outdir"
fail() {
  echo "FAIL: $*"
  for f in "$outdir"/bench.log "$outdir"/report.log; do
    [ -f "$f" ] && { echo "--- $f"; cat "$f"; }
  done
  exit 1
}
"$bench" "$@" --benchmark_format=json --benchmark_out="$outdir/bench.json" --benchmark_out_format=json \
  >"$outdir/bench.stdout" 2>"$outdir/bench.log" || fail "bench exited with $?"
grep -q 'bench: plugin simple (float32, float64' "$outdir/bench.log" || fail "bench did not report loading the plugin"
"$report" convert --json "$outdir/bench.json" --out "$outdir/bench.csv" >"$outdir/report.log" 2>&1 ||
  fail "report convert exited with $?"
for pass in forward backward; do
  grep -Eq "^simple,$pass,float,1,2,64,8,causal,2," "$outdir/bench.csv" || fail "no simple $pass row in bench.csv"
  grep -Eq "^flash,$pass,float,1,2,64,8,causal,2," "$outdir/bench.csv" || fail "no flash $pass row in bench.csv"
done
"$report" summarize --bench "$outdir/bench.csv" --out "$outdir/report" >>"$outdir/report.log" 2>&1 ||
  fail "report summarize exited with $?"
grep -Eq '^\| simple \| 64 \|' "$outdir/report/summary.md" || fail "simple is not in summary.md"
grep -Eq '^\| flash \| 64 \|' "$outdir/report/summary.md" || fail "flash is not in summary.md"
echo "simple is in bench.csv and in the report next to flash"
