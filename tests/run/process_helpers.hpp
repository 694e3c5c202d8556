// Reading from pipes with a deadline, for tests that run real processes (support/process.hpp
// forks them, makes the pipes and waits).
#pragma once

#include "support/process.hpp"

#include <cerrno>
#include <chrono>
#include <optional>
#include <poll.h>
#include <string>
#include <unistd.h>

namespace withgpu::testing {

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

} // namespace withgpu::testing
