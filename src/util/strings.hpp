// Small ASCII string helpers shared by the pure modules, for parsing what users and the
// driver write: flags, configuration values, GPU names. Case folding is ASCII only, on
// purpose: the words compared (units, model names, "GPU-" prefixes, gres types, keys) are
// ASCII, and locale-dependent folding would make a parse depend on the environment. Pure code.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace withgpu::text {

// 'A'..'Z' to 'a'..'z'; every other byte unchanged.
[[nodiscard]] constexpr char to_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// 'a'..'z' to 'A'..'Z'; every other byte unchanged.
[[nodiscard]] constexpr char to_upper(char c) noexcept {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

// `text` with to_lower, or to_upper, applied to each byte.
[[nodiscard]] std::string to_lower(std::string_view text);
[[nodiscard]] std::string to_upper(std::string_view text);

// `text` without leading and trailing spaces, tabs and line breaks.
[[nodiscard]] std::string_view trim(std::string_view text) noexcept;

// Comparisons that ignore ASCII case.
[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept;
[[nodiscard]] bool istarts_with(std::string_view text, std::string_view prefix) noexcept;
// True when `needle` occurs in `haystack`; an empty needle occurs everywhere.
[[nodiscard]] bool icontains(std::string_view haystack, std::string_view needle) noexcept;

// The items of a comma-separated list, each trimmed; empty items are dropped.
[[nodiscard]] std::vector<std::string> split_list(std::string_view text);

// "a, b, c" for separator ", ".
[[nodiscard]] std::string join(const std::vector<std::string>& items, std::string_view separator);

// The candidate closest to `word` within a small edit distance ("max_utl" -> "max_util"),
// for "did you mean" hints; dashes in `word` count as underscores and case is ignored.
[[nodiscard]] std::optional<std::string_view>
closest(std::string_view word, const std::vector<std::string_view>& candidates);

} // namespace withgpu::text
