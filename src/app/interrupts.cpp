#include "app/interrupts.hpp"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <unistd.h>

namespace withgpu::app {

namespace {

// What the handlers write and the wait reads: one of the signal-handler globals that
// ARCHITECTURE.md lists. A handler can reach nothing else.
volatile sig_atomic_t g_received = 0; // NOLINT: written by signal handlers
int g_pipe[2] = {-1, -1};             // NOLINT: the self-pipe; set before the handlers
int g_stop_pipe[2] = {-1, -1};        // NOLINT: the self-pipe for Ctrl-Z

void on_signal(int sig) {
    const int saved = errno;
    g_received = sig;
    const char byte = 1;
    static_cast<void>(!::write(g_pipe[1], &byte, 1)); // non-blocking: a full pipe is enough
    errno = saved;
}

void on_stop(int /*sig*/) {
    const int saved = errno;
    const char byte = 1;
    static_cast<void>(!::write(g_stop_pipe[1], &byte, 1));
    errno = saved;
}

struct sigaction handler_of(void (*handler)(int)) {
    struct sigaction action {};
    sigfillset(&action.sa_mask); // handlers never interrupt each other
    // Writes to the terminal are restarted; the wait, a poll(), returns whatever the flags
    // say, and the pipe wakes it anyway.
    action.sa_flags = SA_RESTART;
    action.sa_handler = handler;
    return action;
}

void close_pipe(int (&fds)[2]) {
    for (int& fd : fds) {
        if (fd >= 0) {
            ::close(fd);
            fd = -1;
        }
    }
}

// Stops the process as a SIGTSTP with its default action would (not at all in an orphaned
// process group, where nobody could continue it), then handles SIGTSTP again.
void stop_as_sigtstp_would() {
    char drain[64];
    while (::read(g_stop_pipe[0], drain, sizeof drain) > 0) {
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGTSTP, &dfl, nullptr);
    ::raise(SIGTSTP); // returns once continued (SIGCONT)
    const struct sigaction action = handler_of(on_stop);
    ::sigaction(SIGTSTP, &action, nullptr);
}

} // namespace

Interrupts::Interrupts() {
    g_received = 0;
    if (::pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        g_pipe[0] = g_pipe[1] = -1; // the wait then notices only through EINTR and received()
    }
    const struct sigaction action = handler_of(on_signal);
    for (std::size_t i = 0; i < signals.size(); ++i) {
        ::sigaction(signals[i], nullptr, &m_previous[i]);
        if (m_previous[i].sa_handler != SIG_IGN) {
            ::sigaction(signals[i], &action, nullptr);
        }
    }
    ::sigaction(SIGTSTP, nullptr, &m_previous_stop);
    if (m_previous_stop.sa_handler != SIG_IGN &&
        ::pipe2(g_stop_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
        const struct sigaction stop = handler_of(on_stop);
        ::sigaction(SIGTSTP, &stop, nullptr);
    }
}

Interrupts::~Interrupts() {
    for (std::size_t i = 0; i < signals.size(); ++i) {
        ::sigaction(signals[i], &m_previous[i], nullptr);
    }
    if (g_stop_pipe[0] >= 0) {
        ::sigaction(SIGTSTP, &m_previous_stop, nullptr);
        char byte = 0;
        if (::read(g_stop_pipe[0], &byte, 1) == 1) {
            ::raise(SIGTSTP); // a Ctrl-Z the wait had no time to take: not lost
        }
    }
    close_pipe(g_pipe);
    close_pipe(g_stop_pipe);
}

core::Cancellation Interrupts::cancellation() const {
    core::Cancellation cancel;
    cancel.fd = g_pipe[0];
    cancel.requested = [] { return g_received != 0; };
    return cancel;
}

core::Stopping Interrupts::stopping() const {
    core::Stopping stop;
    if (g_stop_pipe[0] >= 0) {
        stop.fd = g_stop_pipe[0];
        stop.stop_now = stop_as_sigtstp_would;
    }
    return stop;
}

int Interrupts::received() const noexcept {
    return g_received;
}

void Interrupts::die_of_it() const {
    const int sig = g_received;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(sig, &dfl, nullptr);
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, sig);
    ::sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
    ::raise(sig);
    std::_Exit(128 + sig); // not reached for these signals
}

} // namespace withgpu::app
