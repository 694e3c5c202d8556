// What a wait needs from its caller: the clock, and a way to stop it. The acquisition path
// takes both as arguments, so that the CLI (signals) and the Python package (KeyboardInterrupt,
// with the GIL released) wait with the same code.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>

namespace withgpu::core {

class Clock {
  public:
    Clock() = default;
    Clock(const Clock&) = delete;
    Clock& operator=(const Clock&) = delete;
    virtual ~Clock() = default;
    // For deadlines and how long something waited.
    [[nodiscard]] virtual std::chrono::steady_clock::time_point now() const = 0;
    // Seconds since the epoch, for claim records, tickets and "claimed for 2h13m".
    [[nodiscard]] virtual std::int64_t unix_now() const = 0;
};

// The real clocks.
[[nodiscard]] const Clock& system_clock();

// How the caller ends a wait early. Either or both may be given.
struct Cancellation {
    // Becomes readable when the caller wants the wait to end (the CLI's signal pipe).
    int fd = -1;
    // Asked after every wake-up, including one by a signal (Python: is a KeyboardInterrupt
    // pending?). True ends the wait.
    std::function<bool()> requested;
    // When not zero, `requested` is asked at least this often: for a signal that arrived just
    // before a wait began, which interrupts nothing.
    std::chrono::milliseconds check_every{0};

    [[nodiscard]] bool now() const { return requested && requested(); }
};

// How a front end lets a waiter be stopped by the user (the CLI: Ctrl-Z) at a moment of the
// wait's choosing: the wait first tells whoever waits behind it (docs/design/queue.md,
// "Stopped waiters"), then stops. Without it (the library) the process stops wherever the
// signal finds it, and those behind notice at their next check.
struct Stopping {
    // Becomes readable when the user asked for a stop.
    int fd = -1;
    // Stops the process (as the signal would have), returns once it is continued, and makes
    // `fd` unreadable again.
    std::function<void()> stop_now;

    [[nodiscard]] bool possible() const { return fd >= 0 && stop_now; }
};

enum class Woken { ready, timeout, cancelled };

// Sleeps until one of `fds` is readable (negative entries are ignored), `until` passes (by
// `clock`), or the caller cancels. Costs nothing while it sleeps.
[[nodiscard]] Woken wait_for(std::span<const int> fds,
                             std::chrono::steady_clock::time_point until,
                             const Cancellation& cancel,
                             const Clock& clock = system_clock());

// Sleeps for `duration` unless cancelled: true when it slept the whole time.
[[nodiscard]] bool sleep_for(std::chrono::milliseconds duration,
                             const Cancellation& cancel,
                             const Clock& clock = system_clock());

} // namespace withgpu::core
