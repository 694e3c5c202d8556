#include "report/style.hpp"

namespace withgpu::report {

namespace {

bool starts_code_point(char c) {
    return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U;
}

const char* sgr(Tone tone) {
    switch (tone) {
    case Tone::plain:
        return "";
    case Tone::bold:
        return "\033[1m";
    case Tone::dim:
        return "\033[2m";
    case Tone::green:
        return "\033[32m";
    case Tone::yellow:
        return "\033[33m";
    case Tone::red:
        return "\033[31m";
    }
    return "";
}

} // namespace

std::string paint(std::string_view text, Tone tone, const Style& style) {
    if (!style.color || tone == Tone::plain || text.empty()) {
        return std::string(text);
    }
    std::string out = sgr(tone);
    out += text;
    out += "\033[0m";
    return out;
}

std::size_t display_width(std::string_view text) {
    std::size_t columns = 0;
    for (char c : text) {
        columns += starts_code_point(c) ? 1U : 0U;
    }
    return columns;
}

std::string cut(std::string_view text, std::size_t width) {
    if (display_width(text) <= width) {
        return std::string(text);
    }
    if (width == 0) {
        return {};
    }
    // Keep width - 1 code points, then the ellipsis; never split a UTF-8 sequence.
    std::size_t kept = 0;
    std::size_t end = 0;
    for (; end < text.size(); ++end) {
        if (starts_code_point(text[end])) {
            if (kept == width - 1) {
                break;
            }
            ++kept;
        }
    }
    return std::string(text.substr(0, end)) + "…";
}

std::string pad_right(std::string_view text, std::size_t width) {
    std::string out(text);
    const std::size_t columns = display_width(text);
    if (columns < width) {
        out.append(width - columns, ' ');
    }
    return out;
}

std::string pad_left(std::string_view text, std::size_t width) {
    const std::size_t columns = display_width(text);
    std::string out = columns < width ? std::string(width - columns, ' ') : std::string();
    out += text;
    return out;
}

} // namespace withgpu::report
