#include "app/terminal_progress.hpp"

#include <cstdio>

namespace withgpu::app {

TerminalProgress::TerminalProgress(bool quiet)
    : m_quiet(quiet), m_printer(stderr, /*colors_allowed=*/false) {}

void TerminalProgress::waiting(const report::WaitingState& state, std::chrono::seconds waited) {
    if (m_quiet) {
        return;
    }
    if (m_printer.is_terminal()) {
        m_printer.redraw_line("with-gpu: " + report::waiting_line(state, waited));
    } else if (!m_last_printed || !report::same_but_ages(*m_last_printed, state)) {
        // A claim growing older ("for 1s" -> "for 3s") is not news worth a line.
        m_printer.print_line("with-gpu: " + report::waiting_line(state, std::nullopt));
        m_last_printed = state;
    }
}

void TerminalProgress::note(const std::string& text) {
    if (!m_quiet) {
        m_printer.print_line("with-gpu: " + text); // the redrawn line, if any, is cleared first
    }
}

std::chrono::milliseconds TerminalProgress::redraw_every() const {
    return !m_quiet && m_printer.is_terminal() ? std::chrono::seconds(1)
                                               : std::chrono::milliseconds(0);
}

} // namespace withgpu::app
