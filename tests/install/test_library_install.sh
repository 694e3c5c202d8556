#!/usr/bin/env bash
# The C++ library as a user's project meets it: `cmake --install` into a temporary prefix,
# then examples/cpp built against the installed CMake package (find_package(with_gpu)) and a
# one-file program built with pkg-config's flags, both run on the NVML simulator. Also: the
# shared library exports the public API's names and nothing else.
#
#   tests/install/test_library_install.sh BUILD_DIR
set -euo pipefail

build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
die() {
    echo "FAIL: library install test: $*" >&2
    exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

echo "-- cmake --install $build --prefix <tmp> --component library"
cmake --install "$build" --prefix "$prefix" --component library >"$work/install.log" ||
    die "cmake --install failed: $(cat "$work/install.log")"
libdir=$(find "$prefix" -name 'libwith_gpu.so' -printf '%h\n' | head -n 1)
[[ -n $libdir ]] || die "libwith_gpu.so was not installed"
[[ -f $prefix/include/with_gpu/with_gpu.hpp ]] || die "the header was not installed"

# The standard library's template instantiations are exported by every C++ shared library
# (vague linkage); anything else (fmt, nlohmann_json, withgpu::) must stay inside.
echo "-- exported names"
foreign=$(nm -D --defined-only "$libdir/libwith_gpu.so" | awk '{print $3}' | c++filt |
    grep -vE '^(void |typeinfo (name )?for |vtable for |guard variable for )?with_gpu::' |
    grep -vE '^(void |typeinfo (name )?for |vtable for |guard variable for )?std::' |
    grep -vE '^_(init|fini|edata|end|_bss_start)$' || true)
[[ -z $foreign ]] || die "libwith_gpu.so exports names outside with_gpu::: $foreign"

# The simulated machine and a private lock directory for the programs below.
export WITH_GPU_NVML_LIBRARY=$build/sim-driver/libnvidia-ml.so.1
export WITH_GPU_SIM_MACHINE=$source_dir/sim/machines/a100x8.json
export WITH_GPU_LOCK_DIR=$work/locks
export XDG_CONFIG_HOME=$work/no-config

echo "-- examples/cpp against the installed CMake package"
cmake -S "$source_dir/examples/cpp" -B "$work/example" -DCMAKE_PREFIX_PATH="$prefix" \
    >"$work/example.log" 2>&1 || die "configuring examples/cpp failed: $(cat "$work/example.log")"
cmake --build "$work/example" >>"$work/example.log" 2>&1 ||
    die "building examples/cpp failed: $(cat "$work/example.log")"
out=$(LD_LIBRARY_PATH=$libdir "$work/example/claim_and_run" count=2) || die "claim_and_run failed: $out"
[[ $(grep -c '^GPU [0-9] GPU-' <<<"$out") -eq 2 ]] || die "claim_and_run printed: $out"
set +e
LD_LIBRARY_PATH=$libdir "$work/example/claim_and_run" count=0 2>"$work/err"
rc=$?
set -e
[[ $rc -eq 2 ]] && grep -q count "$work/err" || die "a bad setting gave exit $rc: $(cat "$work/err")"
echo "   claim_and_run count=2: $(tr '\n' ' ' <<<"$out")"

echo "-- a program built with pkg-config's flags"
cat >"$work/status.cpp" <<'PROGRAM'
#include <with_gpu/with_gpu.hpp>
#include <iostream>
int main() { std::cout << with_gpu::status_json().size() << " " << with_gpu::version() << "\n"; }
PROGRAM
flags=$(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --cflags --libs with-gpu) ||
    die "pkg-config does not know with-gpu"
# shellcheck disable=SC2086 # the flags are words
c++ -std=c++17 "$work/status.cpp" $flags -o "$work/status" || die "building with $flags failed"
out=$(LD_LIBRARY_PATH=$libdir "$work/status") || die "the pkg-config program failed"
[[ $out =~ ^[0-9]+\ [0-9.]+$ ]] || die "the pkg-config program printed: $out"
echo "library install test: ok"
