#!/bin/sh
# Runs the benchmark suite and converts its JSON into the tidy CSV that reports/ reads.
#
#   bench/run_bench.sh PROFILE OUTDIR [BUILD_DIR] [-- extra bench arguments]
#
# PROFILE is quick or full; BUILD_DIR (or $PED_BUILD_DIR) defaults to build/release under the
# source tree. Writes OUTDIR/bench.json (Google Benchmark), OUTDIR/bench.csv and
# OUTDIR/bench.samples.csv, OUTDIR/bench.phases.csv (report convert), and OUTDIR/bench.log (the progress lines).
# Then: report summarize --bench OUTDIR/bench.csv --out OUTDIR/report
set -eu

if [ $# -lt 2 ]; then
  echo "usage: $0 quick|full OUTDIR [BUILD_DIR] [-- bench arguments]" >&2
  exit 2
fi
profile=$1
outdir=$2
shift 2
source_dir=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${PED_BUILD_DIR:-$source_dir/build/release}
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  build_dir=$1
  shift
fi
if [ $# -gt 0 ] && [ "$1" = "--" ]; then shift; fi

bench=$build_dir/bench/bench
report=$build_dir/reports/report
for program in "$bench" "$report"; do
  if [ ! -x "$program" ]; then
    echo "$0: $program not built (cmake --build $build_dir --target ped_bench ped_report)" >&2
    exit 2
  fi
done

mkdir -p "$outdir"
start=$(date +%s)
# Google Benchmark writes its JSON as it goes: into a temp file, renamed only after a complete run,
# so a failed run never leaves a partial bench.json beside an earlier run's CSVs.
"$bench" --profile "$profile" --benchmark_format=json --benchmark_out="$outdir/bench.json.tmp" \
  --benchmark_out_format=json "$@" >/dev/null 2>"$outdir/bench.log" || {
  status=$?
  rm -f "$outdir/bench.json.tmp"
  tail -n 20 "$outdir/bench.log" >&2
  exit "$status"
}
mv "$outdir/bench.json.tmp" "$outdir/bench.json"
echo "bench: $profile profile took $(($(date +%s) - start)) s; log in $outdir/bench.log" >&2
"$report" convert --json "$outdir/bench.json" --out "$outdir/bench.csv"
