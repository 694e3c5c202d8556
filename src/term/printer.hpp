// The one writer of terminal output (ninja's LinePrinter is the model): it knows whether its
// stream is a terminal and how wide, whether colours may be used, and how to draw a line or
// a whole screen over the last one. Off a terminal it writes plain lines, with no escape
// sequence at all.
#pragma once

#include "report/style.hpp"

#include <cstdio>
#include <optional>
#include <string_view>

namespace withgpu::term {

class Printer {
  public:
    // `stream` is written through stdio, so that what is printed here stays in order with
    // other output to it. `colors_allowed`: the environment's say (color_allowed()), or false
    // for output that is never coloured.
    Printer(std::FILE* stream, bool colors_allowed);
    // One per stream: it remembers whether a line was redrawn on it.
    Printer(const Printer&) = delete;
    Printer& operator=(const Printer&) = delete;

    [[nodiscard]] bool is_terminal() const { return m_terminal; }
    // The terminal's width now (it may have been resized); nullopt off a terminal or where it
    // will not say.
    [[nodiscard]] std::optional<unsigned> columns() const;
    // How report/ should draw for this stream now (style_for()).
    [[nodiscard]] report::Style style() const;

    // `text` as it is.
    void print(std::string_view text);
    // `line` and a newline; once a line has been redrawn, the current line is cleared first
    // (on an empty line that does nothing).
    void print_line(std::string_view line);
    // On a terminal, `line` over the current one, fitted to the width (fit_to_redraw()), the
    // cursor left at its end; elsewhere, print_line().
    void redraw_line(std::string_view line);
    // On a terminal, `frame` on a cleared screen; elsewhere after the last frame and an empty
    // line.
    void redraw_screen(std::string_view frame);

  private:
    std::FILE* m_stream;
    bool m_terminal;
    bool m_colors_allowed;
    bool m_redrawn = false;
};

// Hides the cursor of a terminal for as long as it lives; then shows it again and ends the
// last line, so that the shell's prompt comes below what was drawn.
class HiddenCursor {
  public:
    explicit HiddenCursor(Printer& printer);
    HiddenCursor(const HiddenCursor&) = delete;
    HiddenCursor& operator=(const HiddenCursor&) = delete;
    ~HiddenCursor();

  private:
    Printer& m_printer;
};

} // namespace withgpu::term
