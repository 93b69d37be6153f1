#!/usr/bin/env bash
# The main job on its built-in default configuration: install, build, run the verify default sweep.
# Everything lands in one output folder, whose path is printed at the end.
# Usage: bash scripts/main.sh [OUTPUT_DIR]     (default: out/run-YYYYmmdd-HHMMSS)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/run-$(date +%Y%m%d-%H%M%S)}
bash scripts/install-deps.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"
mkdir -p "$out"
status=0
./build/release/verify/verify --quiet --out "$out/verify.csv" | tee "$out/verify_summary.txt" || status=$?
echo
echo "main: output in $(cd "$out" && pwd)"
exit "$status"
