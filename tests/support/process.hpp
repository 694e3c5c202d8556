// Forked test bodies, close-on-exec pipes and waiting with a deadline, for tests that need
// real processes: a broken implementation then fails a test instead of hanging it, and
// nothing a child does returns into the test runner.
#pragma once

#include "os/fd.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <optional>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace withgpu::testing {

// Generous: the suite must pass on a loaded two-core machine.
inline constexpr std::chrono::seconds k_deadline{30};

// The exit code of a forked body that threw.
inline constexpr int child_threw = 98;

// Runs `body` in a forked process that exits with its return value and never returns into
// the test runner (signals the body provokes cannot reach the runner either).
template <typename Body> pid_t fork_process(Body&& body) {
    // Or the child would print the runner's buffered output a second time.
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        throw std::runtime_error("fork failed");
    }
    if (pid == 0) {
        int code = child_threw;
        try {
            code = body();
        } catch (...) {
            code = child_threw;
        }
        ::_exit(code);
    }
    return pid;
}

// The raw wait status of `pid`; if it has not ended by the deadline it is killed, reaped,
// and nullopt returned.
inline std::optional<int> wait_for(pid_t pid, std::chrono::milliseconds timeout = k_deadline) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        int status = 0;
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) {
            return status;
        }
        if (done < 0 && errno != EINTR) {
            return std::nullopt;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

// wait_for(pid) as a shell reports it: the exit code, or 128 + the signal that ended it.
// Throws when the process did not end by the deadline.
inline int exit_code_of(pid_t pid) {
    const std::optional<int> status = wait_for(pid);
    if (!status) {
        throw std::runtime_error("the child did not end in time");
    }
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
}

// A close-on-exec pipe.
struct Pipe {
    Fd read;
    Fd write;
    Pipe() {
        int fds[2] = {-1, -1};
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe2 failed");
        }
        read.reset(fds[0]);
        write.reset(fds[1]);
    }
};

} // namespace withgpu::testing
