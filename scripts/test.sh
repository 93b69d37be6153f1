#!/usr/bin/env bash
# Installs what is missing, builds the release preset and runs every test (quick and full labels).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/install-deps.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"
ctest --preset release -j "$(nproc)"
echo "test.sh: done in $(( $(date +%s) - start )) s"
