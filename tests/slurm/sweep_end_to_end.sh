#!/usr/bin/env bash
# End-to-end test of a sharded sweep on a real Slurm: starts a single-node cluster on this machine
# (scripts/slurm/local-cluster.sh: munged, slurmctld, slurmd, a minimal slurm.conf in a temp
# directory), submits the quick benchmark profile's whole case list (one iteration each) and a verify
# selection as a job array of 3 shards with a dependent merge job (scripts/slurm/sweep.sh --wait),
# runs the same sweep unsharded on this machine, and checks that
#   - the merged bench.json holds exactly the unsharded run's benchmarks, in the same order, and the
#     merged bench.csv / bench.samples.csv the same keys;
#   - the merged verify.csv holds the same rows with the same verdicts, in the same order;
#   - each shard task ran bound to the one CPU it asked for, with 1 thread;
#   - bad input fails cleanly: a shard that fails cancels the merge job and --wait names it; a merge
#     with a missing shard writes nothing; a Slurm that is not reachable is an error before any write.
# Stops the cluster whatever happens.
#
#   tests/slurm/sweep_end_to_end.sh SOURCE_DIR BUILD_DIR
#
# Needs root and Debian's slurmctld, slurmd, slurm-client and munge (scripts/install-deps.sh). Without
# them it exits 77 (CTest: skipped), except under CI=true, where it fails.
set -euo pipefail
source_dir=$(cd "$1" && pwd)
build_dir=$(cd "$2" && pwd)

missing=()
for program in munged slurmctld slurmd sbatch; do command -v "$program" >/dev/null || missing+=("$program"); done
if [ "$(id -u)" -ne 0 ] || [ ${#missing[@]} -gt 0 ]; then
  why="needs root and slurmctld, slurmd, slurm-client, munge (missing: ${missing[*]:-none}; uid $(id -u))"
  if [ "${CI:-}" = true ]; then echo "FAIL: $why" >&2; exit 1; fi
  echo "SKIPPED: $why"
  exit 77
fi

work=$(mktemp -d /tmp/ped-slurm-test.XXXXXX)
cluster=$work/cluster
failed=1
cleanup() {
  bash "$source_dir/scripts/slurm/local-cluster.sh" stop "$cluster" >/dev/null 2>&1 || true
  if [ "$failed" -ne 0 ]; then
    echo "--- logs (kept in $work)"
    tail -n 20 "$work"/sweep/logs/*.out "$cluster"/log/*.log 2>/dev/null || true
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A port of its own, so that a cluster left by another run cannot answer instead.
export PED_SLURM_PORT=$((20000 + ($$ % 5000) * 2))
start_output=$(bash "$source_dir/scripts/slurm/local-cluster.sh" start "$cluster")
echo "$start_output"
export SLURM_CONF=$cluster/slurm.conf

bench_args="--iterations 1 --repetitions 1 --copy-bytes 67108864 --gemm-size 512"
verify_args="--ops sdpa,sdpa_features,layer_norm,attention --seeds 1"
shards=3

echo "== sharded: $shards array tasks of 1 CPU, then the merge job"
start=$(date +%s)
bash "$source_dir/scripts/slurm/sweep.sh" --shards "$shards" --out "$work/sweep" --cpus-per-task 1 --no-build \
  --build-dir "$build_dir" --bench-args "$bench_args" --verify-args "$verify_args" --wait ||
  fail "the sharded sweep did not complete (status $?)"
echo "sharded sweep: $(($(date +%s) - start)) s"

echo "== unsharded, on this machine: the same commands as one shard 0/1"
start=$(date +%s)
bash "$source_dir/scripts/sweep/shard.sh" --shard 0/1 --out "$work/whole" --build-dir "$build_dir" --threads 1 \
  --bench-args "$bench_args" --verify-args "$verify_args" >/dev/null
bash "$source_dir/scripts/sweep/merge.sh" --out "$work/whole-merged" --build-dir "$build_dir" "$work/whole" >/dev/null
echo "unsharded: $(($(date +%s) - start)) s"

merged=$work/sweep/merged
whole=$work/whole-merged
for file in bench.json bench.csv bench.samples.csv bench.phases.csv verify.csv verify.shard.json report/summary.md; do
  [ -s "$merged/$file" ] || fail "merged/$file missing"
done

# Benchmarks: the iteration runs' names, in order (one per benchmark and repetition).
names() { grep -o '"run_name": "[^"]*"' "$1" | cut -d'"' -f4; }
names "$merged/bench.json" >"$work/merged.names"
names "$whole/bench.json" >"$work/whole.names"
count=$(sort -u "$work/whole.names" | wc -l)
[ "$count" -gt 200 ] || fail "the unsharded run holds only $count benchmarks (the quick profile has more than 200)"
diff "$work/whole.names" "$work/merged.names" >"$work/names.diff" ||
  fail "merged benchmarks differ from the unsharded run's: $(head -n 5 "$work/names.diff")"
for shard in $(seq 0 $((shards - 1))); do
  n=$(names "$work/sweep/shards/$shard/bench.json" | sort -u | wc -l)
  if [ "$n" -eq 0 ] || [ "$n" -ge "$count" ]; then fail "shard $shard ran $n of $count benchmarks"; fi
done
# The tidy CSVs: the same keys (the nine key columns; every row's measurements differ between runs).
for file in bench.csv bench.samples.csv bench.phases.csv; do
  cut -d, -f1-9 "$merged/$file" | sort >"$work/merged.keys"
  cut -d, -f1-9 "$whole/$file" | sort >"$work/whole.keys"
  cmp -s "$work/merged.keys" "$work/whole.keys" || fail "merged $file keys differ from the unsharded run's"
done
echo "bench: $count benchmarks, the same in the merged set as in the unsharded run"

# Verify: the rows' identity and verdict columns (op, variant, dtype, shape, mask, reference,
# quantity, passed, seed), in order; the errors may differ in the last bits with the thread count.
verdicts() { cut -d, -f1-7,12,13 "$1"; }
rows=$(($(wc -l <"$whole/verify.csv") - 1))
[ "$rows" -gt 100 ] || fail "the unsharded verify run holds only $rows rows"
verdicts "$merged/verify.csv" >"$work/merged.verdicts"
verdicts "$whole/verify.csv" >"$work/whole.verdicts"
diff "$work/whole.verdicts" "$work/merged.verdicts" >"$work/verdicts.diff" ||
  fail "merged verify verdicts differ from the unsharded run's: $(head -n 5 "$work/verdicts.diff")"
if cmp -s "$merged/verify.csv" "$whole/verify.csv"; then same="byte for byte"; else same="verdicts"; fi
echo "verify: $rows rows, the same in the merged set as in the unsharded run ($same)"

# CPU binding: each task saw one CPU and bench ran with one thread.
for shard in $(seq 0 $((shards - 1))); do
  grep -q "^shard $shard/$shards: .*, CPUs [0-9]*\$" "$work/sweep/logs/shard-$shard.out" ||
    fail "shard $shard's log does not show a single bound CPU: $(head -n 1 "$work/sweep/logs/shard-$shard.out")"
  grep -q '"threads": "1"' "$work/sweep/shards/$shard/bench.json" || fail "shard $shard's bench did not run 1 thread"
done

echo "== bad input"
# A shard that fails (a bad bench option: every task exits 2) cancels the merge, and --wait says which.
status=0
bash "$source_dir/scripts/slurm/sweep.sh" --shards 2 --out "$work/bad-shard" --cpus-per-task 1 --no-build \
  --build-dir "$build_dir" --only bench --bench-args "--seq-lens 0" --wait >"$work/bad-shard.out" 2>&1 || status=$?
[ "$status" -eq 1 ] || fail "a failing shard: sweep.sh --wait exited $status, expected 1: $(cat "$work/bad-shard.out")"
grep -q "ped-shard task [01]) FAILED" "$work/bad-shard.out" || fail "a failing shard is not named: $(cat "$work/bad-shard.out")"
[ ! -e "$work/bad-shard/merged" ] || fail "a failing shard still produced a merged set"
# A merge with a missing shard refuses and writes nothing.
status=0
bash "$source_dir/scripts/sweep/merge.sh" --out "$work/partial" --build-dir "$build_dir" \
  "$work/sweep/shards/0" "$work/sweep/shards/2" >"$work/partial.out" 2>&1 || status=$?
[ "$status" -eq 2 ] || fail "a merge without shard 1: exit $status, expected 2"
grep -q "missing" "$work/partial.out" || fail "a merge without shard 1 does not say it is missing: $(cat "$work/partial.out")"
[ -z "$(ls -A "$work/partial" 2>/dev/null)" ] || fail "a refused merge left files in $work/partial"
# The same shard twice.
status=0
bash "$source_dir/scripts/sweep/merge.sh" --out "$work/twice" --build-dir "$build_dir" \
  "$work/sweep/shards/0" "$work/sweep/shards/1" "$work/sweep/shards/1" "$work/sweep/shards/2" >"$work/twice.out" 2>&1 ||
  status=$?
[ "$status" -eq 2 ] || fail "a merge with shard 1 twice: exit $status, expected 2"
[ -z "$(ls -A "$work/twice" 2>/dev/null)" ] || fail "a refused merge left files in $work/twice"
# Slurm not reachable.
bash "$source_dir/scripts/slurm/local-cluster.sh" stop "$cluster" >/dev/null
status=0
bash "$source_dir/scripts/slurm/sweep.sh" --shards 2 --out "$work/no-slurm" --no-build --build-dir "$build_dir" \
  >"$work/no-slurm.out" 2>&1 || status=$?
[ "$status" -eq 2 ] || fail "Slurm down: sweep.sh exited $status, expected 2"
grep -q "Slurm is not reachable" "$work/no-slurm.out" || fail "Slurm down: $(cat "$work/no-slurm.out")"
[ ! -e "$work/no-slurm" ] || fail "Slurm down: sweep.sh created its output directory"

failed=0
echo "PASS"
