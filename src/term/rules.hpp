// What the terminal printer decides, as pure functions of what it found out (whether the
// stream is a terminal, its width, the environment's say on colour), so that tests can check
// every case without a terminal.
#pragma once

#include "report/style.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace withgpu::term {

// The width a board is drawn for where the stream will not say (a pipe, a file).
inline constexpr unsigned fallback_width = 100;

// Whether the environment lets colours be used: NO_COLOR unset or empty
// (https://no-color.org) and TERM not "dumb". The values are passed in: nothing here reads
// the environment.
[[nodiscard]] bool color_allowed(const std::optional<std::string>& no_color,
                                 const std::optional<std::string>& term);

// How report/ draws for a stream: colours only for a person at a terminal that may show
// them; as wide as the terminal, else fallback_width.
[[nodiscard]] report::Style
style_for(bool terminal, bool colors_allowed, std::optional<unsigned> columns);

// `line` fitted to be redrawn in place on a terminal `columns` wide: cut between characters,
// as the board is, with one column spare so that the cursor never wraps onto a new line.
// Left whole where the width is unknown or too narrow to believe (10 columns or fewer).
[[nodiscard]] std::string fit_to_redraw(std::string_view line, std::optional<unsigned> columns);

} // namespace withgpu::term
