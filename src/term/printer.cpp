#include "term/printer.hpp"

#include "term/rules.hpp"

#include <fmt/format.h>

#include <string>
#include <sys/ioctl.h>
#include <unistd.h>

namespace withgpu::term {

namespace {

constexpr std::string_view clear_line = "\r\033[K";        // to the line's start, erase it
constexpr std::string_view clear_screen = "\033[H\033[2J"; // cursor home, then clear
constexpr std::string_view hide_cursor = "\033[?25l";
constexpr std::string_view show_cursor = "\033[?25h";

} // namespace

Printer::Printer(std::FILE* stream, bool colors_allowed)
    : m_stream(stream), m_terminal(::isatty(::fileno(stream)) == 1),
      m_colors_allowed(colors_allowed) {}

std::optional<unsigned> Printer::columns() const {
    winsize size{};
    if (!m_terminal || ::ioctl(::fileno(m_stream), TIOCGWINSZ, &size) != 0 || size.ws_col == 0) {
        return std::nullopt;
    }
    return size.ws_col;
}

report::Style Printer::style() const {
    return style_for(m_terminal, m_colors_allowed, columns());
}

void Printer::print(std::string_view text) {
    // stdio, not fmt::print: output is best effort and must never throw (fmt throws when a
    // write fails, e.g. into a closed pipe).
    static_cast<void>(std::fwrite(text.data(), 1, text.size(), m_stream));
    std::fflush(m_stream);
}

void Printer::print_line(std::string_view line) {
    print(fmt::format("{}{}\n", m_redrawn ? clear_line : "", line));
}

void Printer::redraw_line(std::string_view line) {
    if (!m_terminal) {
        print_line(line);
        return;
    }
    print(fmt::format("{}{}", clear_line, fit_to_redraw(line, columns())));
    m_redrawn = true;
}

void Printer::redraw_screen(std::string_view frame) {
    print(fmt::format("{}{}", m_terminal ? clear_screen : "\n", frame));
}

HiddenCursor::HiddenCursor(Printer& printer) : m_printer(printer) {
    if (m_printer.is_terminal()) {
        m_printer.print(hide_cursor);
    }
}

HiddenCursor::~HiddenCursor() {
    m_printer.print(fmt::format("{}\n", m_printer.is_terminal() ? show_cursor : ""));
}

} // namespace withgpu::term
