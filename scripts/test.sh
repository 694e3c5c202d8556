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
# The tests mostly wait (for locks, timers, processes) rather than compute: one more at a time
# than there are cores keeps both busy (2 cores: 3 at a time took the ASan suite from 232 s to
# 186 s, 2026-12-07; docs/quality.md).
test_jobs=$((jobs + 1))
for preset in dev asan; do
  echo "== build and test: $preset"
  # CI (.ci/run) asks for line tables only (-g1): the same code, stack traces with lines, and
  # about 15 % less compile time, which keeps CI inside its 30 minutes (docs/quality.md).
  debug_info=()
  if [[ -n ${WITH_GPU_CI:-} ]]; then
    debug_info=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_DEBUG="-g1"
                -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_DEBUG="-g1")
  fi
  cmake --preset "$preset" -G Ninja "${debug_info[@]}" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  if [[ $preset == dev ]]; then
    # The checks of .clang-tidy over the dev build's compile database (every C and C++ file
    # of the project: src/, tests/, sim/, bench/, python/); any finding fails. About 11 CPU
    # minutes (docs/quality.md), so about 6 on CI's 2 cores, inside its 30.
    echo "== clang-tidy"
    tidy_log=$(mktemp)
    if ! python3 -c 'import json, os, sys
root = os.path.join(os.path.realpath("."), "")
build = os.path.join(os.path.realpath("build"), "")
tests = os.path.join(root, "tests", "")
everything = os.environ.get("WITH_GPU_TIDY_TESTS") or not os.environ.get("WITH_GPU_CI")
files = {os.path.realpath(e["file"]) for e in json.load(open("build/compile_commands.json"))}
sys.stdout.write("".join(f + "\n" for f in sorted(files)
                         if f.startswith(root) and not f.startswith(build)
                         and (everything or not f.startswith(tests))))' |
         xargs -P "$jobs" -n 1 clang-tidy -p build -quiet -warnings-as-errors='*' \
           >"$tidy_log" 2>&1; then
      grep -v ' warnings\? generated\.$' "$tidy_log" >&2
      rm -f "$tidy_log"
      exit 1
    fi
    rm -f "$tidy_log"
  fi
  ctest --preset "$preset" -j "$test_jobs"
done

echo "== demo: scripts/demo.sh runs to the end and exits 0"
scripts/demo.sh

echo "== package: build, install, run"
tests/install/test_deb.sh build
