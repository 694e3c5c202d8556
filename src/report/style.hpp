// How the status board is drawn. app/ decides (terminal or pipe, NO_COLOR, width);
// report/ only applies it, so that the rendering stays a pure function.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace withgpu::report {

struct Style {
    bool color = false;   // ANSI SGR colours; when false the text has no escape bytes at all
    unsigned width = 100; // terminal columns; rows are cut to fit
};

// What a piece of text means, hence its colour: green free, yellow claimed, red errors, hot
// or busy, dim unknown.
enum class Tone { plain, bold, dim, green, yellow, red };

// `text` wrapped in the SGR codes for `tone` when style.color, otherwise unchanged.
[[nodiscard]] std::string paint(std::string_view text, Tone tone, const Style& style);

// Terminal columns `text` takes: its UTF-8 code points (all the glyphs used here are one
// column wide). Escape sequences are not expected in it.
[[nodiscard]] std::size_t display_width(std::string_view text);

// `text` cut to at most `width` columns, ending in "…" when something was cut off.
[[nodiscard]] std::string cut(std::string_view text, std::size_t width);

// `text` padded with spaces to `width` columns (on the right or on the left).
[[nodiscard]] std::string pad_right(std::string_view text, std::size_t width);
[[nodiscard]] std::string pad_left(std::string_view text, std::size_t width);

} // namespace withgpu::report
