// While with-gpu waits in the queue, Ctrl-C, kill and the --timeout alarm must end it
// at once and leave nothing behind. The handlers remove our ticket file themselves
// (unlinkat is async-signal-safe), so there is no window in which a signal could be
// noticed too late; the kernel drops our locks as we die.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace withgpu::app {

class WaitSignals {
  public:
    // Installs handlers for INT, TERM, HUP, QUIT (die of the same signal, as an interrupted
    // command would) and ALRM (deadline: print `timeout_message`, exit 124). Blocking waits
    // then return early (no SA_RESTART): an ALRM before the deadline only ends the wait, so
    // that the caller looks again and redraws.
    WaitSignals(std::optional<std::chrono::steady_clock::time_point> deadline,
                const std::string& timeout_message,
                bool redraw_every_second);
    WaitSignals(const WaitSignals&) = delete;
    WaitSignals& operator=(const WaitSignals&) = delete;
    // Stops the timer and restores the previous dispositions.
    ~WaitSignals();

    // From now on a fatal signal removes this ticket file (in the directory `dir_fd`).
    void arm_ticket(int dir_fd, const std::string& file_name);
    void disarm_ticket() noexcept;

    // Schedules the next SIGALRM: at the deadline, or in a second when redrawing (then every
    // second). A deadline that has passed fires at once.
    void rearm_timer() const;
};

} // namespace withgpu::app
