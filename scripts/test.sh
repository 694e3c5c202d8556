#!/usr/bin/env bash
# Installs the dependencies, builds with warnings as errors, and runs the whole test
# suite twice: a normal build and an AddressSanitizer + UndefinedBehaviorSanitizer build.
# No GPU is needed: the tests run against the project's NVML simulator.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== format check"
mapfile -t sources < <(git ls-files '*.cpp' '*.hpp' 2>/dev/null || find src sim tests bench -name '*.[ch]pp')
clang-format --dry-run --Werror "${sources[@]}"

echo "== dependency rule: pure modules do no I/O"
if grep -rnE '#include <(sys/|dlfcn\.h|unistd\.h|fcntl\.h|signal\.h|csignal|spawn\.h|poll\.h|pwd\.h|grp\.h|dirent\.h|pthread\.h)' \
     src/util src/gpu src/selection src/queue src/report src/config src/cli src/slurm; then
  echo "a pure module includes an OS header (see ARCHITECTURE.md)" >&2
  exit 1
fi

jobs=$(nproc)
for preset in dev asan; do
  echo "== build and test: $preset"
  cmake --preset "$preset" -G Ninja >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs"
done

echo "== demo: scripts/demo.sh runs to the end and exits 0"
scripts/demo.sh

echo "== package: build, install, run"
tests/install/test_deb.sh build
