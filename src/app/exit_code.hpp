// with-gpu's own exit codes (docs/design/exit-codes.md). The command's own exit
// status passes through unchanged; these are only for with-gpu's outcomes.
#pragma once

#include "util/error.hpp"

namespace withgpu::app {

enum ExitCode : int {
    exit_ok = 0,
    exit_usage = 2,            // bad flags or values
    exit_no_gpu_now = 75,      // EX_TEMPFAIL: nothing suitable is free now; try again later
    exit_timeout = 124,        // --timeout expired (as timeout(1))
    exit_failed = 125,         // with-gpu itself failed, or the request can never be met
    exit_not_executable = 126, // as the shell
    exit_not_found = 127,      // as the shell
};

constexpr int exit_code(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::usage:
        return exit_usage;
    case ErrorKind::no_gpu_now:
        return exit_no_gpu_now;
    case ErrorKind::timeout:
        return exit_timeout;
    case ErrorKind::impossible:
    case ErrorKind::driver:
    case ErrorKind::failed:
    case ErrorKind::cancelled: // the CLI dies of its signal instead (app/interrupts.hpp)
        return exit_failed;
    case ErrorKind::not_executable:
        return exit_not_executable;
    case ErrorKind::not_found:
        return exit_not_found;
    }
    return exit_failed;
}

} // namespace withgpu::app
