# A Debian package of what `cmake --install` installs: `cpack -G DEB` in a build directory.
# The NVML simulator is a test tool and has no install rule, so it is not in the package.
# tests/install/test_deb.sh builds this package, installs it and checks it (lintian too).

# No maintainer e-mail address exists yet: the Maintainer field and the changelog name the
# project alone, which lintian reports (docs/install.md, "Lintian").
set(WITH_GPU_MAINTAINER "The with-gpu project")

# share/doc/with-gpu/copyright: LICENSE (MIT, which Debian calls Expat) in Debian's
# machine-readable format (DEP-5), written when CMake configures.
set(license_file ${PROJECT_SOURCE_DIR}/LICENSE)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${license_file})
file(READ ${license_file} license_text)
if(NOT license_text MATCHES "Copyright \\(c\\) ([^\n]+)\n")
  message(FATAL_ERROR "LICENSE has no \"Copyright (c) YEAR HOLDER\" line")
endif()
set(WITH_GPU_COPYRIGHT "${CMAKE_MATCH_1}")
string(FIND "${license_text}" "Permission is hereby granted" license_start)
if(license_start LESS 0)
  message(FATAL_ERROR "LICENSE is not the MIT licence text that cmake/copyright.in declares")
endif()
string(SUBSTRING "${license_text}" ${license_start} -1 license_body)
string(STRIP "${license_body}" license_body)
# A DEP-5 text field: every line indented by one space, blank lines written " .".
string(REGEX REPLACE "\n\n" "\n.\n" license_body "${license_body}")
string(REPLACE "\n" "\n " WITH_GPU_LICENSE_TEXT "${license_body}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/copyright.in ${PROJECT_BINARY_DIR}/doc/copyright @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/doc/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})

# share/doc/with-gpu/changelog.gz: the release notes (NEWS.md) as a Debian changelog, which
# is what lintian expects of a package whose version has no Debian revision. Built with the
# project; compressed as Debian policy asks (gzip -9n: reproducible, no name or time).
set(changelog ${PROJECT_BINARY_DIR}/doc/changelog)
set(changelog_commands
    COMMAND ${CMAKE_COMMAND} -D NEWS=${PROJECT_SOURCE_DIR}/NEWS.md -D OUTPUT=${changelog}
            -D PACKAGE=with-gpu -D "MAINTAINER=${WITH_GPU_MAINTAINER}"
            -P ${CMAKE_CURRENT_LIST_DIR}/DebianChangelog.cmake)
if(GZIP_EXECUTABLE)
  set(changelog_output ${changelog}.gz)
  list(APPEND changelog_commands COMMAND ${GZIP_EXECUTABLE} -9nf ${changelog})
else()
  set(changelog_output ${changelog})
endif()
add_custom_command(
  OUTPUT ${changelog_output}
  ${changelog_commands}
  DEPENDS ${PROJECT_SOURCE_DIR}/NEWS.md ${CMAKE_CURRENT_LIST_DIR}/DebianChangelog.cmake
  COMMENT "Writing the Debian changelog from NEWS.md"
  VERBATIM)
add_custom_target(changelog ALL DEPENDS ${changelog_output})
install(FILES ${changelog_output} DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "with-gpu")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "${WITH_GPU_MAINTAINER}")
set(CPACK_PACKAGE_CONTACT "${WITH_GPU_MAINTAINER}")
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

set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${WITH_GPU_MAINTAINER}")
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
# One package: the command (CMake's default component) and the Python package (for Debian's
# python3, whose version it is built for). The C++ library (component `library`: libwith_gpu.so,
# headers, CMake package, pkg-config) is for `cmake --install` only until it is split into
# libwith-gpu0 and libwith-gpu-dev packages, as Debian's policy for shared libraries asks.
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_COMPONENTS_ALL Unspecified)
if(WITH_GPU_PYTHON AND WITH_GPU_PYTHON_VERSION)
  list(APPEND CPACK_COMPONENTS_ALL python)
  string(REPLACE "." ";" python_version_parts "${WITH_GPU_PYTHON_VERSION}")
  list(GET python_version_parts 0 python_major)
  list(GET python_version_parts 1 python_minor)
  math(EXPR python_next_minor "${python_minor} + 1")
  set(CPACK_DEBIAN_PACKAGE_RECOMMENDS
      "python3 (>= ${WITH_GPU_PYTHON_VERSION}), python3 (<< ${python_major}.${python_next_minor})")
endif()
# Debian installs packages under /usr (not /usr/local).
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
include(CPack)
