#include "run/signal_forwarder.hpp"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <pthread.h>

namespace withgpu::run {

namespace {

// The pid of the running command (0: none): global, because a signal handler cannot reach an
// object (ARCHITECTURE.md lists every global). Written only with the forwarded signals
// blocked; read by the handler.
std::atomic<pid_t> g_child{0}; // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)
static_assert(std::atomic<pid_t>::is_always_lock_free,
              "the signal handler may only use a lock-free atomic");

// Async-signal-safe: an atomic load, kill(2), and errno kept intact for the code we interrupted.
void forward_signal(int signal, siginfo_t* info, void* /*context*/) {
    const int saved_errno = errno;
    const pid_t child = g_child.load();
    if (child > 0 && info != nullptr && should_forward(info->si_code)) {
        ::kill(child, signal);
    }
    errno = saved_errno;
}

} // namespace

sigset_t forwarded_signal_set() noexcept {
    sigset_t set;
    sigemptyset(&set);
    for (const int signal : k_forwarded_signals) {
        sigaddset(&set, signal);
    }
    return set;
}

SignalBlocker::SignalBlocker(const sigset_t& signals) noexcept
    : m_blocked(::pthread_sigmask(SIG_BLOCK, &signals, &m_previous) == 0) {}

void SignalBlocker::unblock() noexcept {
    if (m_blocked) {
        ::pthread_sigmask(SIG_SETMASK, &m_previous, nullptr);
        m_blocked = false;
    }
}

SignalForwarder::SignalForwarder() noexcept {
    sigemptyset(&m_handled);

    struct sigaction forward {};
    forward.sa_sigaction = forward_signal;
    forward.sa_flags = SA_SIGINFO | SA_RESTART;
    // A second forwarded signal waits until the handler for the first has returned.
    forward.sa_mask = forwarded_signal_set();

    for (std::size_t i = 0; i < k_forwarded_signals.size(); ++i) {
        const int signal = k_forwarded_signals[i];
        if (::sigaction(signal, nullptr, &m_previous[i]) != 0 ||
            m_previous[i].sa_handler == SIG_IGN) {
            continue;
        }
        if (::sigaction(signal, &forward, nullptr) == 0) {
            sigaddset(&m_handled, signal);
        }
    }

    if (::sigaction(SIGCHLD, nullptr, &m_previous_sigchld) == 0 &&
        m_previous_sigchld.sa_handler == SIG_IGN) {
        struct sigaction default_action {};
        default_action.sa_handler = SIG_DFL;
        sigemptyset(&default_action.sa_mask);
        m_sigchld_changed = ::sigaction(SIGCHLD, &default_action, nullptr) == 0;
    }
    m_installed = true;
}

void SignalForwarder::set_child(pid_t child) noexcept {
    g_child.store(child);
}

void SignalForwarder::clear_child() noexcept {
    g_child.store(0);
}

void SignalForwarder::restore() noexcept {
    if (!m_installed) {
        return;
    }
    clear_child();
    for (std::size_t i = 0; i < k_forwarded_signals.size(); ++i) {
        if (sigismember(&m_handled, k_forwarded_signals[i]) == 1) {
            ::sigaction(k_forwarded_signals[i], &m_previous[i], nullptr);
        }
    }
    if (m_sigchld_changed) {
        ::sigaction(SIGCHLD, &m_previous_sigchld, nullptr);
    }
    m_installed = false;
}

} // namespace withgpu::run
