#!/usr/bin/env bash
# Fuzzes every reader with libFuzzer: builds the targets of fuzz/ with clang (coverage,
# AddressSanitizer, UndefinedBehaviorSanitizer) in build/fuzz and runs each for SECONDS seconds
# (default 60), starting from its committed corpus fuzz/corpus/<target>.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     TARGET: benchmark_csv samples_csv verify_csv gbench_json checkpoint mask_parse shard_manifest
#
# Inputs that reach new code are kept in build/fuzz/corpus/<target> (the committed corpus is not
# touched). A failing input is saved as build/fuzz/findings/<target>/crash-*: reproduce it with
# build/fuzz/fuzz/fuzz_<target> FILE, fix the reader, and commit the file to fuzz/corpus/<target>.
# Exit 0 when every target ran its time without a failure, 1 otherwise, 2 on a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(benchmark_csv samples_csv verify_csv gbench_json checkpoint mask_parse shard_manifest)
seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: SECONDS must be a positive integer, got '$seconds'" >&2
  exit 2
fi
shift || true
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  if [[ " ${all_targets[*]} " != *" $t "* ]]; then
    echo "fuzz.sh: unknown target '$t' (known: ${all_targets[*]})" >&2
    exit 2
  fi
done

# The project's packages, then clang with its libFuzzer runtime and clang's OpenMP (variants/ uses
# OpenMP). Only CI's packages are in install-deps.sh; CI does not fuzz.
bash scripts/install-deps.sh
missing=()
for p in clang libclang-rt-dev libomp-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "fuzz.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "fuzz.sh: installing ${missing[*]}"
  "${sudo[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "${missing[@]}"
fi

build=build/fuzz
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DPED_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPED_NATIVE=OFF -DPED_BUILD_VERIFY=OFF -DPED_BUILD_BENCH=OFF "${launcher[@]}" > "$build.configure.log" 2>&1 ||
  { cat "$build.configure.log" >&2; exit 1; }
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

status=0
summary=""
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t" "$build/findings/$t"
  dict=()
  case $t in
    benchmark_csv|samples_csv|verify_csv) dict=(-dict=fuzz/csv.dict) ;;
    gbench_json) dict=(-dict=fuzz/gbench_json.dict) ;;
  esac
  log="$build/findings/$t/fuzz.log"
  echo "fuzz.sh: $t for $seconds s (log: $log)"
  rc=0
  "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 -max_len=8192 \
    -artifact_prefix="$build/findings/$t/" "${dict[@]}" "$build/corpus/$t" "fuzz/corpus/$t" > "$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  crashes=$(find "$build/findings/$t" -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' | wc -l)
  if ((rc != 0)); then
    status=1
    grep -m 3 -E 'FAILED|ERROR|SUMMARY' "$log" >&2 || tail -n 20 "$log" >&2
  fi
  summary+=$(printf '%-14s %12s executions  exit %d  %d finding(s) in %s\n' "$t" "${runs:-?}" "$rc" "$crashes" "$build/findings/$t")$'\n'
done
printf '\n%s' "$summary"
exit "$status"
