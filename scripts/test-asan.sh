#!/usr/bin/env bash
# The sanitizer run: installs what is missing, builds the asan preset (AddressSanitizer +
# UndefinedBehaviorSanitizer, build/asan) and runs every CTest suite under it, the full verify sweep
# included. A sanitizer report fails the test that triggered it (UBSan does not recover).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/install-deps.sh
cmake --preset asan
cmake --build --preset asan -j "$(nproc)"
ctest --preset asan -j "$(nproc)"
echo "test-asan.sh: done in $(( $(date +%s) - start )) s"
