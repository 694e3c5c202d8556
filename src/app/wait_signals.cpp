#include "app/wait_signals.hpp"

#include "app/exit_code.hpp"

#include <algorithm>
#include <array>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <optional>
#include <sys/time.h>
#include <unistd.h>

namespace withgpu::app {

namespace {

// The state the handlers read: global, because a signal handler can reach nothing else
// (ARCHITECTURE.md lists every global). Written only while the handlers cannot run
// (ALRM/INT... blocked) or as single sig_atomic_t stores.
struct HandlerState {
    volatile sig_atomic_t ticket_armed = 0;
    int dir_fd = -1;
    std::array<char, 96> ticket_name{};
    volatile sig_atomic_t has_deadline = 0;
    timespec deadline{};
    std::array<char, 256> timeout_message{};
    std::size_t timeout_message_size = 0;
    volatile sig_atomic_t redraw_every_second = 0;
};

HandlerState g_state; // NOLINT: reached from signal handlers (see above)

constexpr std::array<int, 4> fatal_signals{SIGINT, SIGTERM, SIGHUP, SIGQUIT};
std::array<struct sigaction, fatal_signals.size()> g_previous_fatal{};
struct sigaction g_previous_alarm {};

void remove_ticket() noexcept {
    if (g_state.ticket_armed != 0) {
        ::unlinkat(g_state.dir_fd, g_state.ticket_name.data(), 0);
        g_state.ticket_armed = 0;
    }
}

void on_fatal(int sig) {
    remove_ticket();
    // Die of the same signal once this handler returns (it is blocked until then).
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(sig, &dfl, nullptr);
    ::kill(::getpid(), sig);
}

bool deadline_passed() noexcept {
    if (g_state.has_deadline == 0) {
        return false;
    }
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > g_state.deadline.tv_sec ||
           (now.tv_sec == g_state.deadline.tv_sec && now.tv_nsec >= g_state.deadline.tv_nsec);
}

void on_alarm(int /*sig*/) {
    if (deadline_passed()) {
        remove_ticket();
        (void)!::write(STDERR_FILENO, g_state.timeout_message.data(), g_state.timeout_message_size);
        ::_exit(exit_timeout);
    }
    // Otherwise the signal has done its work: it ended the blocking wait it arrived in.
}

timespec to_timespec(std::chrono::steady_clock::time_point t) {
    // steady_clock is CLOCK_MONOTONIC on Linux with libstdc++.
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(ns.count() / 1000000000);
    ts.tv_nsec = static_cast<long>(ns.count() % 1000000000);
    return ts;
}

} // namespace

WaitSignals::WaitSignals(std::optional<std::chrono::steady_clock::time_point> deadline,
                         const std::string& timeout_message,
                         bool redraw_every_second) {
    g_state.ticket_armed = 0;
    g_state.has_deadline = deadline ? 1 : 0;
    if (deadline) {
        g_state.deadline = to_timespec(*deadline);
    }
    g_state.timeout_message_size =
        std::min(timeout_message.size(), g_state.timeout_message.size() - 1);
    std::memcpy(
        g_state.timeout_message.data(), timeout_message.data(), g_state.timeout_message_size);
    g_state.redraw_every_second = redraw_every_second ? 1 : 0;

    struct sigaction action {};
    sigfillset(&action.sa_mask); // handlers never interrupt each other
    action.sa_flags = 0;         // no SA_RESTART: blocking waits must return
    action.sa_handler = on_fatal;
    for (std::size_t i = 0; i < fatal_signals.size(); ++i) {
        ::sigaction(fatal_signals[i], nullptr, &g_previous_fatal[i]);
        // A signal the user's shell ignores (nohup, background jobs) stays ignored.
        if (g_previous_fatal[i].sa_handler != SIG_IGN) {
            ::sigaction(fatal_signals[i], &action, nullptr);
        }
    }
    action.sa_handler = on_alarm;
    ::sigaction(SIGALRM, &action, &g_previous_alarm);
    rearm_timer();
}

WaitSignals::~WaitSignals() {
    itimerval off{};
    ::setitimer(ITIMER_REAL, &off, nullptr);
    for (std::size_t i = 0; i < fatal_signals.size(); ++i) {
        ::sigaction(fatal_signals[i], &g_previous_fatal[i], nullptr);
    }
    ::sigaction(SIGALRM, &g_previous_alarm, nullptr);
    g_state.ticket_armed = 0;
    g_state.has_deadline = 0;
}

void WaitSignals::arm_ticket(int dir_fd, const std::string& file_name) {
    g_state.ticket_armed = 0;
    g_state.dir_fd = dir_fd;
    const std::size_t n = std::min(file_name.size(), g_state.ticket_name.size() - 1);
    std::memcpy(g_state.ticket_name.data(), file_name.data(), n);
    g_state.ticket_name[n] = '\0';
    g_state.ticket_armed = 1;
}

void WaitSignals::disarm_ticket() noexcept {
    g_state.ticket_armed = 0;
}

void WaitSignals::rearm_timer() const {
    using namespace std::chrono;
    itimerval timer{};
    const auto set = [](timeval& field, nanoseconds value) {
        // Never 0 (that would stop the timer) and never negative (EINVAL): a deadline that
        // has passed fires at once. Rounded up, so that it does not fire before the deadline.
        const auto us = std::max(ceil<microseconds>(value), microseconds(1));
        field.tv_sec = static_cast<time_t>(us.count() / 1000000);
        field.tv_usec = static_cast<suseconds_t>(us.count() % 1000000);
    };
    std::optional<nanoseconds> next;
    if (g_state.redraw_every_second != 0) {
        next = seconds(1);
        // Then every second: a blocking step that is not followed by rearm_timer (waiting
        // for the decision lock) still redraws, and notices the deadline.
        set(timer.it_interval, seconds(1));
    }
    if (g_state.has_deadline != 0) {
        timespec now{};
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        const nanoseconds left = seconds(g_state.deadline.tv_sec - now.tv_sec) +
                                 nanoseconds(g_state.deadline.tv_nsec - now.tv_nsec);
        next = std::min(next.value_or(left), left);
    }
    if (next) {
        set(timer.it_value, *next);
    }
    ::setitimer(ITIMER_REAL, &timer, nullptr);
}

} // namespace withgpu::app
