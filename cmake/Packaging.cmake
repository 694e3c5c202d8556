# A Debian package of what `cmake --install` installs: `cpack -G DEB` in a build directory.
# The NVML simulator is a test tool and has no install rule, so it is not in the package.
# tests/install/test_deb.sh builds this package, installs it and checks it.

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "with-gpu")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "with-gpu developers")
set(CPACK_PACKAGE_CONTACT "with-gpu developers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "run a command on free NVIDIA GPUs, claimed so no other job takes them")
# The first line of the Debian description is the summary above; CPack prepends it and
# indents these lines as dpkg expects.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "with-gpu finds NVIDIA GPUs that are really free (by free memory, utilisation,
temperature, power, processes and model), claims them with a lock file per GPU
so that no other with-gpu job of any user can take them, and runs the command
on them with CUDA_VISIBLE_DEVICES set. The claim ends with the command, however
it ends. No daemon and no configuration are needed. Jobs can wait for GPUs in a
fair first-come, first-served queue.

The NVIDIA driver's NVML library (libnvidia-ml.so.1) is loaded at run time; the
package does not depend on it, so that it also serves drivers installed outside
Debian's packages.")

set(CPACK_DEBIAN_PACKAGE_MAINTAINER "with-gpu developers")
set(CPACK_DEBIAN_PACKAGE_SECTION "utils")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# Depends: from the binary's shared libraries, as dpkg-shlibdeps (dpkg-dev) computes them.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# with-gpu_<version>_<arch>.deb
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")
# Control files with the permissions dpkg-deb and lintian expect.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# A dev build (RelWithDebInfo) still gives a package without debug sections.
set(CPACK_STRIP_FILES ON)
# Debian installs packages under /usr (not /usr/local).
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
include(CPack)
