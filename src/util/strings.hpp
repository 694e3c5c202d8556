// Small ASCII string helpers shared by the pure modules. Pure code.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace withgpu::text {

[[nodiscard]] constexpr char to_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

[[nodiscard]] constexpr char to_upper(char c) noexcept {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

[[nodiscard]] std::string to_lower(std::string_view text);

// `text` without leading and trailing spaces, tabs and line breaks.
[[nodiscard]] std::string_view trim(std::string_view text) noexcept;

// The items of a comma-separated list, each trimmed; empty items are dropped.
[[nodiscard]] std::vector<std::string> split_list(std::string_view text);

// "a, b, c" for separator ", ".
[[nodiscard]] std::string join(const std::vector<std::string>& items, std::string_view separator);

// The candidate closest to `word` within a small edit distance ("max_utl" -> "max_util"),
// for "did you mean" hints; dashes in `word` count as underscores and case is ignored.
[[nodiscard]] std::optional<std::string_view>
closest(std::string_view word, const std::vector<std::string_view>& candidates);

} // namespace withgpu::text
