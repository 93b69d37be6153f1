#!/usr/bin/env bash
# Runs shard I of N of a sweep: bench's benchmarks (bench --shard, then report convert) and verify's
# checks (verify --shard), each over its part of the same case list, into one directory that
# scripts/sweep/merge.sh (report merge) combines with the other shards'. The Slurm job array
# (scripts/slurm/) and the CI matrix example (examples/ci_matrix/) both run this.
#
#   bash scripts/sweep/shard.sh --shard I/N --out DIR [options]
#
#   --shard I/N          this shard (0 <= I < N)
#   --out DIR            where its outputs go (created; must not hold an earlier shard's outputs)
#   --build-dir DIR      the programs to run: a build tree or an installed bin directory (default:
#                        build/release of this source tree)
#   --profile P          bench's profile, quick or full (default: quick)
#   --threads T          bench's threads (default: $SLURM_CPUS_PER_TASK under Slurm, else nproc);
#                        every shard of a sweep must use the same (benchmark names hold T)
#   --only bench|verify  run one of the two (default: both)
#   --bench-args "..."   more bench options, word-split (e.g. "--cases plain --seq-lens 256,512")
#   --verify-args "..."  more verify options, word-split (e.g. "--ops sdpa --seeds 1")
#
# Writes DIR/bench.json (Google Benchmark's JSON, the shard's manifest in its context), bench.csv,
# bench.samples.csv, bench.phases.csv (report convert, where the shard ran an attention benchmark),
# bench.log (progress), and DIR/verify.csv, verify.shard.json (the shard's manifest), verify.log. Exit status: 0 when the
# shard's outputs are complete (failed checks are a verdict, recorded in verify.csv, and fail the
# merge step instead, so that the report is still written); 2 on a usage error; otherwise the status
# of the step that failed (its log says why), with nothing of that step left behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=programs.sh
. "$here/programs.sh"

usage() {
  sed -n '/^#   bash/,/^# Writes/p' "$0" | sed 's/^# \{0,1\}//' | sed '$d' >&2
  exit 2
}
die() { echo "shard.sh: $*" >&2; exit 2; }

shard='' out='' build_dir=$here/../../build/release profile=quick threads='' only='' bench_args='' verify_args=''
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { [ "$1" = --help ] || [ "$1" = -h ] && usage; die "$1: missing value"; }
  case "$1" in
  --shard) shard=$2 ;;
  --out) out=$2 ;;
  --build-dir) build_dir=$2 ;;
  --profile) profile=$2 ;;
  --threads) threads=$2 ;;
  --only) only=$2 ;;
  --bench-args) bench_args=$2 ;;
  --verify-args) verify_args=$2 ;;
  *) die "unknown option '$1' (--help lists them)" ;;
  esac
  shift 2
done
[ -n "$shard" ] || die "--shard I/N is required"
[ -n "$out" ] || die "--out DIR is required"
case "$only" in '' | bench | verify) ;; *) die "--only '$only': expected bench or verify" ;; esac
if [ -z "$threads" ]; then threads=${SLURM_CPUS_PER_TASK:-$(nproc)}; fi
case "$threads" in '' | *[!0-9]* | 0) die "--threads '$threads': expected a whole number >= 1" ;; esac
find_programs shard.sh "$build_dir" || exit 2
for file in bench.json verify.csv verify.shard.json; do
  [ ! -e "$out/$file" ] || die "$out/$file exists: an earlier shard's output (give an empty --out)"
done
# The shard spec is checked by the programs themselves; ask one now so that a bad one fails before
# anything runs or is written.
"$verify" --list-cases --shard "$shard" --ops layer_norm >/dev/null || exit 2
mkdir -p "$out"

echo "shard.sh: shard $shard, $threads threads, on $(hostname) ($out)"
if [ "$only" != verify ]; then
  # Google Benchmark writes its JSON as it goes: into a temp file, renamed once the run is complete.
  status=0
  # shellcheck disable=SC2086  # --bench-args is a list of options
  "$bench" --profile "$profile" --shard "$shard" --threads "$threads" $bench_args \
    --benchmark_out="$out/bench.json.tmp" --benchmark_out_format=json >/dev/null 2>"$out/bench.log" || status=$?
  if [ "$status" -ne 0 ]; then
    rm -f "$out/bench.json.tmp"
    tail -n 5 "$out/bench.log" >&2
    echo "shard.sh: bench exited $status (log: $out/bench.log)" >&2
    exit "$status"
  fi
  mv "$out/bench.json.tmp" "$out/bench.json"
  # The shard's own CSVs, for a look at one shard; report merge reads bench.json. A shard without an
  # attention benchmark (its part holds only layer or GEMM cases, or nothing) has no CSV to convert.
  if ! "$report" convert --json "$out/bench.json" --out "$out/bench.csv" 2>"$out/convert.log"; then
    echo "shard.sh: no bench.csv for this shard: $(head -n 1 "$out/convert.log")"
  fi
fi
if [ "$only" != bench ]; then
  status=0
  # shellcheck disable=SC2086
  "$verify" --quiet --shard "$shard" --out "$out/verify.csv" $verify_args >"$out/verify.log" 2>&1 ||
    status=$?
  tail -n 3 "$out/verify.log"
  # 1: some check failed, and the CSV says which; anything else means no complete output.
  if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then
    echo "shard.sh: verify exited $status (log: $out/verify.log)" >&2
    exit "$status"
  fi
fi
echo "shard.sh: shard $shard done"
