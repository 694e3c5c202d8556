// What a front end passes into the acquisition path: where progress goes, how a wait ends
// early, and the clock. The CLI prints to a terminal and ends on signals; the library calls
// back into Python and ends on KeyboardInterrupt. Both run the same path.
#pragma once

#include "core/wait.hpp"
#include "report/waiting_report.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace withgpu::core {

class Progress {
  public:
    Progress() = default;
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;
    virtual ~Progress() = default;

    // Still waiting, and why; `waited` since the request began.
    virtual void waiting(const report::WaitingState& state, std::chrono::seconds waited) = 0;
    // A line of its own: an odd file in the lock directory, an NVML read that is retried, the
    // GPUs a waiter got.
    virtual void note(const std::string& text) = 0;
    // How often waiting() wants to be called although nothing changed (a terminal's clock
    // ticking); zero: only when something changed.
    [[nodiscard]] virtual std::chrono::milliseconds redraw_every() const { return {}; }
};

// A Progress that says nothing (--status, --dry-run, tests).
class Silent final : public Progress {
  public:
    void waiting(const report::WaitingState& /*state*/, std::chrono::seconds /*waited*/) override {}
    void note(const std::string& /*text*/) override {}
};

struct Hooks {
    Progress& progress;
    Cancellation cancel{};
    const Clock& clock = system_clock();
    Stopping stop{};
};

// Passes each note to hooks.progress once, however often a waiter looks again, and empties
// `fresh`.
class Notes {
  public:
    void pass_on(std::vector<std::string>& fresh, Progress& progress);

  private:
    std::vector<std::string> m_seen;
};

} // namespace withgpu::core
