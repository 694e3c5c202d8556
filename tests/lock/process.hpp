// Helpers for lock tests that need other processes: flock claims are per open file, and
// the interesting properties (exclusion, inheritance, release on death) are across processes.
// Forking, waiting and pipes are support/process.hpp's.
#pragma once

#include "lock/claim.hpp"
#include "lock/lock_dir.hpp"
#include "support/process.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <grp.h>
#include <poll.h>
#include <string>
#include <string_view>
#include <unistd.h>
#include <utility>
#include <vector>

namespace withgpu::testing {

inline constexpr uid_t nobody_uid = 65534;
inline constexpr gid_t nobody_gid = 65534;

// Exit codes of child processes that try to claim.
inline constexpr int child_acquired = 0;
inline constexpr int child_busy = 1;
inline constexpr int child_error = 2;

inline bool running_as_root() {
    return ::geteuid() == 0;
}

// Whether a test that cannot run here must fail rather than skip: CI runs as root with every
// package and sets WITH_GPU_REQUIRE_ALL_TESTS=1 (.ci/run), so a skip there hides a lost test.
inline bool all_tests_required() {
    const char* value = std::getenv("WITH_GPU_REQUIRE_ALL_TESTS");
    return value != nullptr && std::string_view(value) == "1";
}

// In a test body: skips (or, where every test is required, fails) unless running as root.
#define WITH_GPU_REQUIRE_ROOT(why)                                                                 \
    do {                                                                                           \
        if (!::withgpu::testing::running_as_root()) {                                              \
            if (::withgpu::testing::all_tests_required()) {                                        \
                FAIL() << "needs root " << (why) << ", and WITH_GPU_REQUIRE_ALL_TESTS=1";          \
            }                                                                                      \
            GTEST_SKIP() << "needs root " << (why);                                                \
        }                                                                                          \
    } while (false)

// Runs `body` in a forked child and returns its exit code (or 128 + signal).
inline int run_in_child(const std::function<int()>& body) {
    return exit_code_of(fork_process(body));
}

// Gives up root in a child so that permission checks apply to it: user `uid`, group `gid`.
inline bool become(uid_t uid, gid_t gid) {
    return ::setgroups(0, nullptr) == 0 && ::setgid(gid) == 0 && ::setuid(uid) == 0;
}

inline bool become_nobody() {
    return become(nobody_uid, nobody_gid);
}

inline int report_error(const Error& error) {
    std::fprintf(stderr, "child: %s (hint: %s)\n", error.message.c_str(), error.hint.c_str());
    return child_error;
}

// In a child: opens the lock directory afresh and tries to claim `uuids`.
inline int try_claim_here(const std::string& dir_path, const std::vector<std::string>& uuids) {
    auto dir = lock::LockDir::open(dir_path, false);
    if (!dir) {
        return report_error(dir.error());
    }
    auto claim = lock::Claim::try_acquire(*dir, uuids);
    if (!claim) {
        return report_error(claim.error());
    }
    return claim->has_value() ? child_acquired : child_busy;
}

// A fresh process tries to claim `uuids` and releases at once; returns a child_* code.
inline int try_claim_elsewhere(const std::string& dir_path, const std::vector<std::string>& uuids) {
    return run_in_child([&] { return try_claim_here(dir_path, uuids); });
}

// Reads up to `max` bytes, waiting at most `deadline` for the first; returns "" on timeout
// or end of file. The deadline is generous: it only bounds a test that is already failing.
inline std::string read_with_deadline(
    int fd, std::size_t max, std::chrono::milliseconds deadline = std::chrono::seconds(60)) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(deadline.count())) != 1) {
        return {};
    }
    std::string buffer(max, '\0');
    const ssize_t n = ::read(fd, buffer.data(), max);
    buffer.resize(n > 0 ? static_cast<std::size_t>(n) : 0U);
    return buffer;
}

// A claim on `uuids` held by another process, running as `uid`, until release() or
// destruction; started() says whether it holds it.
class ClaimHeldElsewhere {
  public:
    ClaimHeldElsewhere(const std::string& dir_path,
                       const std::vector<std::string>& uuids,
                       uid_t uid) {
        m_pid = fork_process([&] {
            if (!become(uid, uid)) {
                return 70;
            }
            auto dir = lock::LockDir::open(dir_path, false);
            if (!dir) {
                return report_error(dir.error());
            }
            auto held = lock::Claim::try_acquire(*dir, uuids);
            if (!held || !held->has_value() || ::write(m_ready.write.get(), "x", 1) != 1) {
                return 71;
            }
            char byte = 0;
            m_finish.write.reset();
            static_cast<void>(::read(m_finish.read.get(), &byte, 1));
            return 0;
        });
        m_ready.write.reset();
        m_finish.read.reset();
        m_started = read_with_deadline(m_ready.read.get(), 1) == "x";
    }
    ClaimHeldElsewhere(const ClaimHeldElsewhere&) = delete;
    ClaimHeldElsewhere& operator=(const ClaimHeldElsewhere&) = delete;
    ~ClaimHeldElsewhere() { static_cast<void>(release()); }

    [[nodiscard]] bool started() const noexcept { return m_started; }
    // Ends the claim; the holder's exit code (0: it held the claim until now), once.
    int release() {
        if (m_pid < 0) {
            return -1;
        }
        m_finish.write.reset();
        return exit_code_of(std::exchange(m_pid, -1));
    }

  private:
    Pipe m_ready;
    Pipe m_finish;
    pid_t m_pid = -1;
    bool m_started = false;
};

} // namespace withgpu::testing
