#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the main job need. Harmless when they are
# all there already: apt is only called for what is missing.
set -euo pipefail

packages=(
  cmake g++ make git pkg-config
  libarmadillo-dev     # reference/: matrix expressions
  libopenblas-dev      # BLAS for Armadillo and LibTorch; without it both fall back to reference BLAS
  libsleef-dev         # reference/: GELU's vectorised erf
  libxsmm-dev          # variants/: the attention kernels' tile GEMMs (optional: PED_LIBXSMM=OFF builds without it)
  libtorch-dev         # verify/ and bench/: the LibTorch twins and baselines
  libgtest-dev libgmock-dev
  libbenchmark-dev     # bench/
  libfccp-dev          # reports/: the CSV parser
  libcli11-dev         # command-line parsing
  nlohmann-json3-dev   # reading Google Benchmark's JSON
  libdlpack-dev        # the attention plugin ABI's tensors (<dlpack/dlpack.h>)
  gnuplot-nox          # reports/: plots
  libxml2-utils        # xmllint: the tests check that verify --junit writes well-formed XML
  munge slurmctld slurmd slurm-client  # scripts/slurm/: sharded sweeps on Slurm, and their end-to-end test
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "${missing[@]}"
