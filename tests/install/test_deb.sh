#!/usr/bin/env bash
# Builds the Debian package from a configured and built build directory, checks its
# contents (the copyright file and the changelog included) and runs lintian on it, installs
# it with dpkg, checks what it installed (the binary, the man page, the completions), runs
# the installed with-gpu on the NVML simulator of the build tree (the simulator is not in
# the package), then removes the package and checks that it is gone.
#
#   tests/install/test_deb.sh BUILD_DIR
#
# First it checks the man page and the completions of the source tree against
# `BUILD_DIR/bin/with-gpu --help`; that part needs nothing but the build. Installing needs
# root (dpkg -i): without it, that part is skipped. It is also skipped rather than replace a
# with-gpu that is already installed. The package is removed again even if a check fails.
set -euo pipefail

build_arg=${1:?usage: $0 BUILD_DIR}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)

skip() {
    echo "SKIP: package test: $*"
    exit 0
}
die() {
    echo "FAIL: package test: $*" >&2
    exit 1
}

build=$(cd "$build_arg" && pwd)
[[ -f $build/CPackConfig.cmake ]] || die "$build is not a configured build directory"
if grep -q '^WITH_GPU_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
    die "$build is a sanitizer build; package a normal one"
fi
sim_dir=$build/sim-driver
[[ -f $sim_dir/libnvidia-ml.so.1 ]] || die "no simulator in $sim_dir (build the nvidia-ml-sim target)"
project_version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
program=$build/bin/with-gpu
[[ -x $program ]] || die "no $program (build the with-gpu target)"

echo "-- the man page and the completions of the source tree"
man_page=$source_dir/man/with-gpu.1
man_version=$(sed -n 's/^\.TH .*"with-gpu \([^"]*\)".*/\1/p' "$man_page")
[[ $man_version == "$project_version" ]] ||
    die "man/with-gpu.1 says version '$man_version', the project is $project_version (update .TH)"
# Every option of `with-gpu --help` is documented ("\-" is how roff writes "-").
mapfile -t options < <("$program" --help | awk '/^  -/ {print $1}' | sed 's/\[=.*//' | tr ',' '\n')
((${#options[@]} > 20)) || die "could not read the options from with-gpu --help"
man_text=$(sed 's/\\-/-/g' "$man_page")
for option in "${options[@]}"; do
    grep -qE -- "(^|[^a-z-])$option([^a-z-]|\$)" <<<"$man_text" ||
        die "$option (in with-gpu --help) is not in man/with-gpu.1"
done
if command -v groff >/dev/null; then
    warnings=$(groff -man -Tutf8 -ww -z "$man_page" 2>&1)
    [[ -z $warnings ]] || die "man/with-gpu.1 renders with warnings: $warnings"
fi
"$source_dir/tests/install/test_completions.sh" "$build"

if [[ $(id -u) -ne 0 ]]; then
    skip "installing a .deb needs root (run as root, e.g. in a container)"
fi
if [[ $(dpkg-query -W -f='${db:Status-Status}' with-gpu 2>/dev/null) == installed ]]; then
    skip "a with-gpu package is already installed on this machine; not replacing it"
fi
if [[ -e /usr/bin/with-gpu ]]; then
    skip "/usr/bin/with-gpu already exists; not replacing it"
fi
for tool in cpack dpkg dpkg-deb dpkg-shlibdeps dpkg-parsechangelog file; do
    command -v "$tool" >/dev/null ||
        die "$tool is missing (scripts/install-deps.sh installs cmake, dpkg-dev and file)"
done

work=$(mktemp -d)
installed=false
cleanup() {
    if $installed; then
        dpkg -r with-gpu >/dev/null 2>&1 || echo "warning: could not remove with-gpu" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "-- cpack -G DEB in $build"
if ! (cd "$build" && cpack -G DEB -B "$work/package") >"$work/cpack.log" 2>&1; then
    cat "$work/cpack.log" >&2
    die "cpack failed"
fi
debs=("$work"/package/with-gpu_*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || die "expected one with-gpu_*.deb, got: ${debs[*]}"
deb=${debs[0]}

# The files the package must hold, and must not.
files=(
    /usr/bin/with-gpu
    /usr/share/doc/with-gpu/copyright
    /usr/share/doc/with-gpu/changelog.gz
    /usr/share/man/man1/with-gpu.1.gz
    /usr/share/bash-completion/completions/with-gpu
    /usr/share/zsh/vendor-completions/_with-gpu
    /usr/share/fish/vendor_completions.d/with-gpu.fish
)
# The Python package, for Debian's python3, when the build made it (WITH_GPU_PYTHON).
python_files=()
if grep -q '^WITH_GPU_PYTHON:BOOL=ON' "$build/CMakeCache.txt"; then
    python_files=(
        /usr/lib/python3/dist-packages/with_gpu/__init__.py
        /usr/lib/python3/dist-packages/with_gpu/__init__.pyi
        /usr/lib/python3/dist-packages/gpu_scheduler/__init__.py
    )
    files+=("${python_files[@]}")
fi
listing=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\.##')
for f in "${files[@]}"; do
    grep -qx -- "$f" <<<"$listing" || die "$f is not in the package"
done
if grep -q 'libnvidia-ml' <<<"$listing"; then
    die "the NVML simulator must not be in the package"
fi
if ((${#python_files[@]})) && ! grep -qE '^/usr/lib/python3/dist-packages/with_gpu/_native\..*\.so$' <<<"$listing"; then
    die "the Python package's extension module is not in the package"
fi
if grep -qE 'libwith_gpu|/include/' <<<"$listing"; then
    die "the C++ library is for cmake --install only (cmake/Packaging.cmake)"
fi
if grep -q 'with-gpu-test-build' <<<"$listing"; then
    die "the test build with-gpu-test-build must not be in the package"
fi
version=$(dpkg-deb -f "$deb" Version)
[[ $version == "$project_version" ]] ||
    die "package version $version is not the project version $project_version"
[[ $(dpkg-deb -f "$deb" Section) == utils ]] || die "Section is not utils"
depends=$(dpkg-deb -f "$deb" Depends)
[[ $depends == *libc6* ]] || die "Depends ($depends) was not computed from the binary"
echo "   $(basename "$deb"): Depends: $depends"
maintainer=$(dpkg-deb -f "$deb" Maintainer)
[[ $maintainer == "The with-gpu project" ]] || die "Maintainer is '$maintainer'"

# The documentation files, read from the package itself.
package_file() { # PATH: the content of PATH in the package
    dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ".$1"
}
copyright=$(package_file /usr/share/doc/with-gpu/copyright)
[[ $(head -n 1 <<<"$copyright") == "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/" ]] ||
    die "the copyright file is not in Debian's machine-readable format (no Format: line)"
grep -qx 'Files: \*' <<<"$copyright" || die "the copyright file has no 'Files: *' paragraph"
holders=$(sed -n 's/^Copyright (c) //p' "$source_dir/LICENSE")
{ [[ -n $holders ]] && grep -qxF "Copyright: $holders" <<<"$copyright"; } ||
    die "the copyright file does not name the holders as LICENSE does ($holders)"
[[ $(grep -cx 'License: Expat' <<<"$copyright") -eq 2 ]] ||
    die "the copyright file does not declare and give the Expat (MIT) licence"
# The licence text, with DEP-5's indentation and " ." lines undone, is LICENSE's.
licence_in_package=$(awk '/^License: Expat$/ { n++; next }
    n == 2 && /^ / { sub(/^ /, ""); if ($0 == ".") $0 = ""; print }' <<<"$copyright")
licence_in_sources=$(sed -n '/^Permission is hereby granted/,$p' "$source_dir/LICENSE")
[[ $licence_in_package == "$licence_in_sources" ]] ||
    die "the licence text in the copyright file differs from LICENSE"
package_file /usr/share/doc/with-gpu/changelog.gz | gzip -dc >"$work/changelog" ||
    die "changelog.gz is not a gzip file"
changelog_version=$(dpkg-parsechangelog -l "$work/changelog" -S Version 2>/dev/null) ||
    die "dpkg-parsechangelog cannot read the changelog"
[[ $changelog_version == "$version" ]] ||
    die "the changelog's latest version is '$changelog_version', the package's $version (add it to NEWS.md)"
echo "   copyright: DEP-5, Expat; changelog: $(head -n 1 "$work/changelog")"

# lintian: nothing but the one documented complaint (docs/install.md, "Lintian"): no
# maintainer e-mail address exists, which lintian reports for the Maintainer field
# (malformed-contact) and for the changelog's trailer lines (syntax-error-in-debian-changelog).
if command -v lintian >/dev/null; then
    lintian --tag-display-limit 0 "$deb" >"$work/lintian.log" 2>&1 || true
    unexpected=$(grep -E '^[EW]: ' "$work/lintian.log" |
        grep -vE '^E: with-gpu: malformed-contact Maintainer ' |
        grep -vE '^W: with-gpu: syntax-error-in-debian-changelog "[^"]*trailer[^"]*" \[usr/share/doc/with-gpu/changelog\.gz:[0-9]+\]$' ||
        true)
    [[ -z $unexpected ]] || die "lintian: $unexpected"
    grep -qE '^E: with-gpu: malformed-contact' "$work/lintian.log" ||
        die "lintian no longer reports malformed-contact: update docs/install.md and this test"
    echo "   lintian: only the documented complaint (no maintainer e-mail address)"
else
    echo "   note: lintian is not installed (scripts/install-deps.sh installs it); not run"
fi

echo "-- dpkg -i"
installed=true
dpkg -i "$deb" >"$work/dpkg-i.log" 2>&1 || {
    cat "$work/dpkg-i.log" >&2
    die "dpkg -i failed"
}
[[ $(dpkg-query -W -f='${db:Status-Status}' with-gpu) == installed ]] ||
    die "dpkg does not list with-gpu as installed"

# A Docker image may tell dpkg not to unpack documentation (path-exclude); dpkg still
# records such files, so only their presence on disk depends on that.
excluded() {
    local rule
    while read -r rule; do
        # shellcheck disable=SC2053 # the rule is a glob
        [[ -n $rule && $1 == $rule ]] && return 0
    done < <(sed -n 's/^path-exclude[= ]*//p' /etc/dpkg/dpkg.cfg.d/* 2>/dev/null)
    return 1
}
registered=$(dpkg -L with-gpu)
for f in "${files[@]}"; do
    grep -qx -- "$f" <<<"$registered" || die "dpkg -L does not list $f"
    if excluded "$f"; then
        echo "   note: $f is excluded by this machine's dpkg configuration"
    else
        [[ -f $f ]] || die "$f was not installed"
    fi
done

out=$(/usr/bin/with-gpu --version)
[[ $out == "with-gpu $version" ]] || die "with-gpu --version printed '$out'"
echo "   $out"

if ! excluded /usr/share/man/man1/with-gpu.1.gz; then
    if command -v man >/dev/null; then
        page=$(man -w with-gpu) || die "man -w with-gpu found no page"
        [[ $page == /usr/share/man/man1/with-gpu.1.gz ]] || die "man -w with-gpu gave $page"
    fi
    if command -v groff >/dev/null; then
        warnings=$(zcat /usr/share/man/man1/with-gpu.1.gz | groff -man -Tutf8 -ww -z 2>&1)
        [[ -z $warnings ]] || die "the installed man page renders with warnings: $warnings"
    fi
fi

echo "-- the installed with-gpu on the simulated machine"
export LD_LIBRARY_PATH=$sim_dir
export WITH_GPU_SIM_MACHINE=$source_dir/sim/machines/a100x8.json
export WITH_GPU_LOCK_DIR=$work/locks
export XDG_CONFIG_HOME=$work/no-config # the user's own settings must not change the outcome
out=$(/usr/bin/with-gpu --status) || die "with-gpu --status failed: $out"
grep -q '8 GPUs' <<<"$out" || die "with-gpu --status did not show the 8 simulated GPUs: $out"
# shellcheck disable=SC2016 # expanded by the job's shell
out=$(/usr/bin/with-gpu -q -n 2 -- sh -c 'echo "$CUDA_VISIBLE_DEVICES $WITH_GPU_UUIDS"') ||
    die "with-gpu -n 2 failed: $out"
[[ $out =~ ^[0-9]+,[0-9]+\ GPU-[^,]+,GPU-[^,]+$ ]] ||
    die "the job did not get two GPUs: '$out'"
echo "   with-gpu -n 2 gave the job: $out"
set +e
WITH_GPU_NVML_LIBRARY=$work/no-such-libnvidia-ml.so.1 /usr/bin/with-gpu -q true 2>/dev/null
rc=$?
set -e
[[ $rc -eq 125 ]] || die "without a driver with-gpu exited $rc, not 125"
# No variable points the installed program at another system file (docs/config.md): only
# the test build with-gpu-test-build has that hook.
printf '[defaults]\nbanned = ["name:A100"]\n' >"$work/system.toml"
out=$(WITH_GPU_SYSTEM_CONFIG=$work/system.toml WITH_GPU_TEST_SYSTEM_CONFIG=$work/system.toml \
    /usr/bin/with-gpu --show-config) || die "with-gpu --show-config failed: $out"
if grep -q "$work/system.toml" <<<"$out"; then
    die "the installed with-gpu read a system file named in the environment: $out"
fi
if ((${#python_files[@]})); then
    # The installed package, by Debian's python3 from anywhere (not the build tree).
    out=$(cd / && env -u PYTHONPATH WITH_GPU_NVML_LIBRARY="$sim_dir/libnvidia-ml.so.1" \
        /usr/bin/python3 -c 'import with_gpu, gpu_scheduler
with with_gpu.acquire(count=2) as lease:
    print(with_gpu.__file__, len(lease.indices), len(gpu_scheduler.get_gpu_info()))') ||
        die "the installed Python package failed: $out"
    [[ $out == "/usr/lib/python3/dist-packages/with_gpu/__init__.py 2 8" ]] ||
        die "the installed Python package printed '$out'"
    echo "   python3: with_gpu claimed 2 GPUs; gpu_scheduler sees 8"
fi
unset LD_LIBRARY_PATH WITH_GPU_SIM_MACHINE WITH_GPU_LOCK_DIR XDG_CONFIG_HOME

echo "-- the installed completions"
"$source_dir/tests/install/test_completions.sh" "$build" /usr

echo "-- dpkg -r"
dpkg -r with-gpu >"$work/dpkg-r.log" 2>&1 || {
    cat "$work/dpkg-r.log" >&2
    die "dpkg -r failed"
}
installed=false
status=$(dpkg-query -W -f='${db:Status-Status}' with-gpu 2>/dev/null || true)
[[ $status != installed ]] || die "with-gpu is still installed after dpkg -r"
for f in "${files[@]}"; do
    [[ ! -e $f ]] || die "$f is still there after dpkg -r"
done
echo "package test: ok"
