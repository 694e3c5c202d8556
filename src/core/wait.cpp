#include "core/wait.hpp"

#include "os/clock.hpp"

#include <algorithm>
#include <cerrno>
#include <limits>
#include <poll.h>
#include <vector>

namespace withgpu::core {

namespace {

class SystemClock final : public Clock {
  public:
    [[nodiscard]] std::chrono::steady_clock::time_point now() const override {
        return std::chrono::steady_clock::now();
    }
    [[nodiscard]] std::int64_t unix_now() const override { return now_unix(); }
};

// poll()'s timeout: rounded up, so that a wait never ends before `until`; capped to an int.
int milliseconds_until(std::chrono::steady_clock::time_point until,
                       std::chrono::steady_clock::time_point now) {
    if (until <= now) {
        return 0;
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
    return static_cast<int>(std::min<std::int64_t>(left, std::numeric_limits<int>::max()));
}

} // namespace

const Clock& system_clock() {
    static const SystemClock clock;
    return clock;
}

Woken wait_for(std::span<const int> fds,
               std::chrono::steady_clock::time_point until,
               const Cancellation& cancel,
               const Clock& clock) {
    std::vector<pollfd> polled;
    for (const int fd : fds) {
        if (fd >= 0) {
            polled.push_back({fd, POLLIN, 0});
        }
    }
    const bool with_cancel_fd = cancel.fd >= 0;
    if (with_cancel_fd) {
        polled.push_back({cancel.fd, POLLIN, 0});
    }
    for (;;) {
        if (cancel.now()) {
            return Woken::cancelled;
        }
        const auto now = clock.now();
        if (now >= until) {
            return Woken::timeout;
        }
        auto wake = until;
        if (cancel.check_every.count() > 0) {
            wake = std::min(wake, now + cancel.check_every);
        }
        for (auto& p : polled) {
            p.revents = 0;
        }
        const int n = ::poll(polled.data(), polled.size(), milliseconds_until(wake, now));
        if (n < 0 && errno != EINTR) {
            return Woken::ready; // cannot wait (ENOMEM): let the caller look again
        }
        if (n <= 0) {
            continue; // a signal or the next check: ask the caller, look at the clock
        }
        if (with_cancel_fd && polled.back().revents != 0) {
            return Woken::cancelled;
        }
        return Woken::ready;
    }
}

bool sleep_for(std::chrono::milliseconds duration, const Cancellation& cancel, const Clock& clock) {
    return wait_for({}, clock.now() + duration, cancel, clock) == Woken::timeout;
}

} // namespace withgpu::core
