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

void on_signal(int sig) {
    const int saved = errno;
    g_received = sig;
    const char byte = 1;
    static_cast<void>(!::write(g_pipe[1], &byte, 1)); // non-blocking: a full pipe is enough
    errno = saved;
}

} // namespace

Interrupts::Interrupts() {
    g_received = 0;
    if (::pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        g_pipe[0] = g_pipe[1] = -1; // the wait then notices only through EINTR and received()
    }
    struct sigaction action {};
    sigfillset(&action.sa_mask); // handlers never interrupt each other
    // Writes to the terminal are restarted; the wait, a poll(), returns whatever the flags
    // say, and the pipe wakes it anyway.
    action.sa_flags = SA_RESTART;
    action.sa_handler = on_signal;
    for (std::size_t i = 0; i < signals.size(); ++i) {
        ::sigaction(signals[i], nullptr, &m_previous[i]);
        if (m_previous[i].sa_handler != SIG_IGN) {
            ::sigaction(signals[i], &action, nullptr);
        }
    }
}

Interrupts::~Interrupts() {
    for (std::size_t i = 0; i < signals.size(); ++i) {
        ::sigaction(signals[i], &m_previous[i], nullptr);
    }
    for (int& fd : g_pipe) {
        if (fd >= 0) {
            ::close(fd);
            fd = -1;
        }
    }
}

core::Cancellation Interrupts::cancellation() const {
    core::Cancellation cancel;
    cancel.fd = g_pipe[0];
    cancel.requested = [] { return g_received != 0; };
    return cancel;
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
