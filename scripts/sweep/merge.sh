#!/usr/bin/env bash
# Merges the shards of a sweep (scripts/sweep/shard.sh) into one set and writes the report: report
# merge (which refuses shards of different revisions, profiles or settings, overlapping, missing or
# duplicated shards, and timings from different kinds of machine), then report summarize.
#
#   bash scripts/sweep/merge.sh --out DIR [--build-dir DIR] SHARD_DIR...
#
# --build-dir: a build tree or an installed bin directory (default: build/release of this source tree).
# Writes DIR/bench.json, bench.csv, bench.samples.csv, bench.phases.csv, verify.csv,
# verify.shard.json (the merged set, as an unsharded run writes them) and DIR/report/ (summary.md,
# fits.csv, plots). Exit status: 0 when every verify check passed, 1 when one failed (the report is
# written either way), 2 when the shards cannot be merged (nothing written).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=programs.sh
. "$here/programs.sh"
die() { echo "merge.sh: $*" >&2; exit 2; }

out='' build_dir=$here/../../build/release
while [ $# -gt 0 ]; do
  case "$1" in
  --out) [ $# -ge 2 ] || die "--out: missing value"; out=$2; shift 2 ;;
  --build-dir) [ $# -ge 2 ] || die "--build-dir: missing value"; build_dir=$2; shift 2 ;;
  --help | -h) sed -n '/^#   bash/,/^# Writes/p' "$0" | sed 's/^# \{0,1\}//' | sed '$d' >&2; exit 2 ;;
  --) shift; break ;;
  -*) die "unknown option '$1'" ;;
  *) break ;;
  esac
done
[ -n "$out" ] || die "--out DIR is required"
[ $# -ge 1 ] || die "no shard directories given"
find_programs merge.sh "$build_dir" || exit 2

# report merge exits 1 when the merged verify.csv holds a failed check (after writing everything),
# 2 when it refused the shards (having written nothing).
status=0
"$report" merge --out "$out" "$@" || status=$?
[ "$status" -le 1 ] || exit "$status"
if [ -f "$out/bench.csv" ]; then
  summarize=("$report" summarize --bench "$out/bench.csv" --out "$out/report")
  [ -f "$out/verify.csv" ] && summarize+=(--verify "$out/verify.csv")
  "${summarize[@]}"
fi
echo "merge.sh: merged set in $(cd "$out" && pwd)$([ -f "$out/bench.csv" ] && echo ", report in $out/report")"
[ "$status" -eq 0 ] || echo "merge.sh: some verify check failed (verify.csv, column passed)" >&2
exit "$status"
