// Passing signals sent to with-gpu on to the command it runs. Private to run/; see
// docs/design/signals.md for what is forwarded and why.
#pragma once

#include <array>
#include <csignal>
#include <sys/types.h>

namespace withgpu::run {

// The signals with-gpu passes on to its command.
inline constexpr std::array<int, 6> k_forwarded_signals{
    SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2};

// The decision the handler makes: forward only what a process sent (kill, sigqueue, tgkill:
// si_code <= 0). The kernel's own signals (SI_KERNEL: the terminal's INT and QUIT, a hangup)
// went to the whole foreground process group, the command included, already.
[[nodiscard]] constexpr bool should_forward(int si_code) noexcept {
    return si_code <= 0;
}

// k_forwarded_signals as a sigset_t.
[[nodiscard]] sigset_t forwarded_signal_set() noexcept;

// Blocks signals in this thread for its lifetime (or until unblock()), then restores the mask.
class SignalBlocker {
  public:
    explicit SignalBlocker(const sigset_t& signals) noexcept;
    SignalBlocker(const SignalBlocker&) = delete;
    SignalBlocker& operator=(const SignalBlocker&) = delete;
    ~SignalBlocker() { unblock(); }

    // Restores the previous mask; signals that arrived meanwhile are delivered now. Idempotent.
    void unblock() noexcept;

  private:
    sigset_t m_previous{};
    bool m_blocked = false;
};

// Installs handlers that kill(child, signal) for k_forwarded_signals while a child is set, and
// restores the previous dispositions. A signal the caller's parent set to SIG_IGN (nohup, a
// background job of a non-interactive shell) keeps being ignored, by us and by the command.
// Also undoes an inherited SIGCHLD=SIG_IGN, under which the kernel would reap the child before
// we could read its status. At most one instance may exist at a time (the handler reads one
// global pid). Construct it with the forwarded signals blocked.
class SignalForwarder {
  public:
    SignalForwarder() noexcept;
    SignalForwarder(const SignalForwarder&) = delete;
    SignalForwarder& operator=(const SignalForwarder&) = delete;
    ~SignalForwarder() { restore(); }

    // Publishes the child's pid to the handler; call with the forwarded signals blocked.
    void set_child(pid_t child) noexcept;
    // Stops forwarding; call with the forwarded signals blocked, before reaping the child, so a
    // late signal can never reach a process that reused its pid.
    void clear_child() noexcept;

    // The signals that have our handler installed; the child gets SIG_DFL for these.
    [[nodiscard]] const sigset_t& handled() const noexcept { return m_handled; }

    // Clears the child and puts the previous dispositions back. Idempotent.
    void restore() noexcept;

  private:
    std::array<struct sigaction, k_forwarded_signals.size()> m_previous{};
    struct sigaction m_previous_sigchld {};
    sigset_t m_handled{};
    bool m_sigchld_changed = false;
    bool m_installed = false;
};

} // namespace withgpu::run
