#include "util/text.hpp"

#include <cstddef>
#include <cstdint>

namespace withgpu::text {

namespace {

constexpr std::string_view replacement = "\xEF\xBF\xBD"; // U+FFFD

// The length of the well-formed UTF-8 sequence at text[pos] and its code point, or 0 when
// the byte there does not start one (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
std::size_t sequence_at(std::string_view text, std::size_t pos, std::uint32_t& code_point) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[pos + i]); };
    const unsigned char lead = byte(0);
    std::size_t length = 0;
    std::uint32_t value = 0;
    unsigned char low = 0x80; // allowed range of the second byte
    unsigned char high = 0xBF;
    if (lead < 0x80) {
        code_point = lead;
        return 1;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
        value = lead & 0x1FU;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        value = lead & 0x0FU;
        low = lead == 0xE0 ? 0xA0 : 0x80;  // no overlongs
        high = lead == 0xED ? 0x9F : 0xBF; // no surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        value = lead & 0x07U;
        low = lead == 0xF0 ? 0x90 : 0x80;  // no overlongs
        high = lead == 0xF4 ? 0x8F : 0xBF; // nothing above U+10FFFF
    } else {
        return 0;
    }
    if (pos + length > text.size()) {
        return 0;
    }
    for (std::size_t i = 1; i < length; ++i) {
        const unsigned char b = byte(i);
        const bool in_range = i == 1 ? (b >= low && b <= high) : (b >= 0x80 && b <= 0xBF);
        if (!in_range) {
            return 0;
        }
        value = (value << 6U) | (b & 0x3FU);
    }
    code_point = value;
    return length;
}

bool is_control(std::uint32_t c) {
    return c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F) || (c >= 0x202A && c <= 0x202E) ||
           (c >= 0x2066 && c <= 0x2069);
}

template <typename OnCodePoint>
std::string rewrite(std::string_view text, OnCodePoint on_code_point) {
    std::string out;
    out.reserve(text.size());
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::uint32_t code_point = 0;
        const std::size_t length = sequence_at(text, pos, code_point);
        if (length == 0) {
            out += replacement;
            ++pos;
            continue;
        }
        on_code_point(out, text.substr(pos, length), code_point);
        pos += length;
    }
    return out;
}

} // namespace

std::string valid_utf8(std::string_view text) {
    return rewrite(text,
                   [](std::string& out, std::string_view bytes, std::uint32_t) { out += bytes; });
}

std::string printable(std::string_view text) {
    return rewrite(text, [](std::string& out, std::string_view bytes, std::uint32_t code_point) {
        if (is_control(code_point)) {
            out += '?';
        } else {
            out += bytes;
        }
    });
}

} // namespace withgpu::text
