#!/usr/bin/env bash
# Installs what with-gpu needs to build and test, from Debian's archive (Debian 12).
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  lld  # links the command (src/CMakeLists.txt); GNU ld serves where it is missing
  libcli11-dev nlohmann-json3-dev libfmt-dev libexpected-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev
  python3 clang-format clang-tidy
  pybind11-dev python3-pybind11 python3-dev python3-pytest python3-hypothesis python3-venv
  python3-pip  # the Python package
  python3-filelock  # bench/python_acquire.py: the seed's way, for comparison
  dpkg-dev file
  zsh fish bash-completion lintian  # tests/install: completions in their shells, lintian
  slurm-wlm munge  # tests/slurm: a real one-node SLURM
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi
echo "Installing: ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
