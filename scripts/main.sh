#!/usr/bin/env bash
# The main job on its built-in default configuration: install, build, run the verify default sweep,
# the quick benchmark profile, the tiny GPT training demo and the report. Everything lands in one output folder, whose path is
# printed at the end.
# Usage: bash scripts/main.sh [OUTPUT_DIR]     (default: out/run-YYYYmmdd-HHMMSS)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/run-$(date +%Y%m%d-%H%M%S)}
build=build/release

bash scripts/install-deps.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"
mkdir -p "$out"

echo "== verify: every layer and attention kernel against LibTorch, finite differences and naive"
verify_status=0
"$build/verify/verify" --quiet --out "$out/verify.csv" | tee "$out/verify_summary.txt" || verify_status=$?

echo "== bench: quick profile"
bench/run_bench.sh quick "$out" "$build"

echo "== train: character-level tiny GPT on /usr/share/common-licenses/GPL-3"
"$build/train/train" --out "$out/train"

echo "== report"
"$build/reports/report" summarize --bench "$out/bench.csv" --verify "$out/verify.csv" --out "$out/report"

echo
echo "main: verify $([ "$verify_status" -eq 0 ] && echo passed || echo FAILED); summary in $out/report/summary.md"
echo "main: output in $(cd "$out" && pwd)"
exit "$verify_status"
