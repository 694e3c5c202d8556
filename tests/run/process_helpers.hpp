// Helpers for tests that run real processes: pipes, forked test bodies, and waiting with a
// deadline, so that a broken implementation fails a test instead of hanging it.
#pragma once

#include "os/fd.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace withgpu::testing {

// Generous: the suite must pass on a loaded two-core machine.
inline constexpr std::chrono::seconds k_deadline{30};

struct Pipe {
    Fd read;
    Fd write;
};

inline Pipe make_pipe() {
    int fds[2] = {-1, -1};
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe2 failed");
    }
    return Pipe{Fd(fds[0]), Fd(fds[1])};
}

// Reads up to and without the next '\n'; nullopt on EOF or when the deadline passes first.
inline std::optional<std::string> read_line(int fd,
                                            std::chrono::milliseconds timeout = k_deadline) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string line;
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return std::nullopt;
        }
        pollfd pfd{fd, POLLIN, 0};
        const int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready <= 0) {
            return std::nullopt;
        }
        char c = 0;
        const ssize_t n = ::read(fd, &c, 1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return std::nullopt;
        }
        if (c == '\n') {
            return line;
        }
        line.push_back(c);
    }
}

// Reads everything until EOF (the writers have exited).
inline std::string read_all(int fd) {
    std::string text;
    char buffer[4096];
    while (true) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return text;
        }
        text.append(buffer, static_cast<std::size_t>(n));
    }
}

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
        int code = 99;
        try {
            code = body();
        } catch (...) {
            code = 98;
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

} // namespace withgpu::testing
