#!/usr/bin/env bash
# The sharded sweep as a user of the installed package runs it (examples/ci_matrix/): installs this
# build into a fresh prefix, runs PREFIX/share/pedestrian/scripts/sweep/shard.sh for shards 0/2 and
# 1/2 of a small bench and verify selection with the installed programs (--build-dir PREFIX/bin), and
# merge.sh; checks that the merged set holds every shard's cases once, and that bad shard specs fail
# before anything is written.
#
#   tests/sweep/installed_sweep.sh BUILD_DIR
set -euo pipefail
build_dir=$(cd "$1" && pwd)
work=$(mktemp -d /tmp/ped-installed-sweep.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
scripts=$work/prefix/share/pedestrian/scripts/sweep
bin=$work/prefix/bin
for file in "$scripts/shard.sh" "$scripts/merge.sh" "$scripts/programs.sh" "$bin/bench" "$bin/verify" "$bin/report" \
  "$work/prefix/share/pedestrian/scripts/slurm/sweep.sh" "$work/prefix/share/pedestrian/scripts/install-deps.sh"; do
  [ -e "$file" ] || fail "not installed: ${file#"$work/prefix/"}"
done

bench_args="--cases plain --variants flash,naive --passes forward --masks causal --seq-lens 16,32,64 --layers off
  --gemm off --allocator-probe off --iterations 1 --repetitions 1 --copy-bytes 1048576 --gemm-size 64"
verify_args="--ops layer_norm,sdpa --variants flash --seeds 1,2"
for shard in 0 1; do
  bash "$scripts/shard.sh" --shard "$shard/2" --out "$work/shards/$shard" --build-dir "$bin" --threads 1 \
    --bench-args "$bench_args" --verify-args "$verify_args" >"$work/shard-$shard.log" 2>&1 ||
    fail "shard $shard/2: $(tail -n 5 "$work/shard-$shard.log")"
done
bash "$scripts/merge.sh" --out "$work/merged" --build-dir "$bin" "$work/shards/0" "$work/shards/1" >"$work/merge.log" 2>&1 ||
  fail "merge: $(tail -n 5 "$work/merge.log")"

rows() { echo $(($(wc -l <"$1") - 1)); }
for file in bench.csv verify.csv; do
  total=$(( $(rows "$work/shards/0/$file") + $(rows "$work/shards/1/$file") ))
  [ "$(rows "$work/shards/0/$file")" -gt 0 ] && [ "$(rows "$work/shards/1/$file")" -gt 0 ] ||
    fail "$file: a shard ran nothing"
  [ "$(rows "$work/merged/$file")" -eq "$total" ] || fail "merged $file: $(rows "$work/merged/$file") rows, the shards $total"
done
[ "$(rows "$work/merged/bench.csv")" -eq 6 ] || fail "merged bench.csv: $(rows "$work/merged/bench.csv") rows, expected 2 variants x 3 N"
[ -s "$work/merged/report/summary.md" ] || fail "no merged report"

# Bad shard specs: exit 2 before anything is written.
for spec in 2/2 0/0 x/2; do
  status=0
  bash "$scripts/shard.sh" --shard "$spec" --out "$work/bad" --build-dir "$bin" >"$work/bad.log" 2>&1 || status=$?
  [ "$status" -eq 2 ] || fail "--shard $spec: exit $status, expected 2"
  grep -q -- "--shard '$spec'" "$work/bad.log" || fail "--shard $spec: $(cat "$work/bad.log")"
  [ ! -e "$work/bad" ] || fail "--shard $spec: $work/bad was created"
done
echo PASS
