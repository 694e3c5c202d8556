// The CLI's progress display on stderr: while waiting, one line redrawn in place on a
// terminal (its clock ticking every second); on anything else, a line only when the reason
// for waiting changes. Notes on lines of their own. Nothing with -q.
#pragma once

#include "core/hooks.hpp"
#include "term/printer.hpp"

#include <optional>

namespace withgpu::app {

class TerminalProgress final : public core::Progress {
  public:
    explicit TerminalProgress(bool quiet);

    void waiting(const report::WaitingState& state, std::chrono::seconds waited) override;
    void note(const std::string& text) override;
    [[nodiscard]] std::chrono::milliseconds redraw_every() const override;

  private:
    bool m_quiet;
    term::Printer m_printer;
    std::optional<report::WaitingState> m_last_printed; // off a terminal
};

} // namespace withgpu::app
