// While with-gpu waits in the queue, Ctrl-C, kill, a closed terminal and SIGQUIT must end the
// wait at once and leave nothing behind. The handlers only note the signal and write a byte
// to a pipe that the wait polls (core::Cancellation), so the wait returns, its ticket is
// removed as the stack unwinds, and then with-gpu dies of the same signal, as an interrupted
// command would. Ctrl-Z (SIGTSTP) is noted the same way and taken by the wait between two
// looks, after it told the waiters behind it (core::Stopping).
#pragma once

#include "core/wait.hpp"

#include <array>
#include <csignal>

namespace withgpu::app {

class Interrupts {
  public:
    // Installs the handlers (a signal the user's shell ignores, as nohup does, stays ignored).
    Interrupts();
    Interrupts(const Interrupts&) = delete;
    Interrupts& operator=(const Interrupts&) = delete;
    // Restores the previous handlers.
    ~Interrupts();

    // For the wait: readable once a signal came.
    [[nodiscard]] core::Cancellation cancellation() const;
    // For the wait: readable once Ctrl-Z came; stop_now() stops with-gpu as SIGTSTP would
    // have. Not possible when SIGTSTP was ignored when with-gpu started.
    [[nodiscard]] core::Stopping stopping() const;
    // The signal that came (0: none).
    [[nodiscard]] int received() const noexcept;
    // Restores the default handling of the signal that came and raises it: does not return.
    [[noreturn]] void die_of_it() const;

  private:
    static constexpr std::array<int, 4> signals{SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    std::array<struct sigaction, signals.size()> m_previous{};
    struct sigaction m_previous_stop {};
};

} // namespace withgpu::app
