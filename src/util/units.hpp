// Pure parsing and formatting of sizes, durations and percentages.
#pragma once

#include "util/error.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace withgpu::units {

// Parses a memory size into bytes.
// A bare number is MiB (as in the original with-gpu's --min-memory).
// Binary suffixes: K, KiB, M, MiB, G, GiB, T, TiB (case-insensitive, "B" optional on K/M/G/T).
// Decimal suffixes: KB, MB, GB, TB (powers of 1000).
// Fractions are allowed ("1.5G"). Errors are ErrorKind::usage with a hint listing the forms.
[[nodiscard]] Result<std::uint64_t> parse_size(std::string_view text);

// Parses a duration: a bare number is seconds; suffixes ms, s, m, h (e.g. "90", "30s", "5m",
// "2h", "1.5h", "250ms"). Must be >= 0.
[[nodiscard]] Result<std::chrono::milliseconds> parse_duration(std::string_view text);

// Parses a non-negative integer (no sign, no suffix), e.g. for --max-util or -n.
[[nodiscard]] Result<unsigned> parse_unsigned(std::string_view text, std::string_view what);

// "3.1 GiB", "512 MiB", "80 GiB": binary units, one decimal below 10, none above.
[[nodiscard]] std::string format_size(std::uint64_t bytes);

// Seconds from `since_unix` to `now_unix`, 0 when `since_unix` is later (a clock set back),
// and never an overflow, whatever a claim record or ticket file says.
[[nodiscard]] std::chrono::seconds elapsed(std::int64_t since_unix, std::int64_t now_unix);

// "45s", "2m05s", "2h13m", "3d04h": compact, for claims and waiting times.
[[nodiscard]] std::string format_duration(std::chrono::seconds duration);

inline constexpr std::uint64_t mib = 1024ULL * 1024ULL;

} // namespace withgpu::units
