#include "util/units.hpp"

#include "util/strings.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace withgpu::units {
namespace {

constexpr std::string_view size_forms = "2048 (MiB), 20G, 20GiB, 500MB, 1.5T";
constexpr std::string_view duration_forms = "90 (seconds), 250ms, 30s, 5m, 1.5h";

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// "12.5 GiB" split into its parts. The integer part is kept exact so that large
// whole numbers do not lose precision; only the fraction goes through a double.
struct Quantity {
    std::uint64_t whole = 0;
    double fraction = 0.0; // in [0, 1)
    std::string_view unit; // what follows the number (and optional spaces)
};

enum class QuantityError { malformed, negative, too_large };

tl::expected<Quantity, QuantityError> split_quantity(std::string_view text) {
    text = text::trim(text);
    if (!text.empty() && text.front() == '-') {
        // Only call it negative when a number follows; "-x" is simply malformed.
        const std::string_view rest = text.substr(1);
        if (!rest.empty() && (is_digit(rest.front()) || rest.front() == '.')) {
            return tl::unexpected(QuantityError::negative);
        }
        return tl::unexpected(QuantityError::malformed);
    }
    std::size_t pos = 0;
    while (pos < text.size() && is_digit(text[pos])) {
        ++pos;
    }
    const std::string_view whole_digits = text.substr(0, pos);
    std::string_view fraction_digits;
    if (pos < text.size() && text[pos] == '.') {
        const std::size_t start = ++pos;
        while (pos < text.size() && is_digit(text[pos])) {
            ++pos;
        }
        fraction_digits = text.substr(start, pos - start);
        if (fraction_digits.empty()) {
            return tl::unexpected(QuantityError::malformed); // "1." or "."
        }
    }
    if (whole_digits.empty() && fraction_digits.empty()) {
        return tl::unexpected(QuantityError::malformed);
    }

    Quantity quantity;
    if (!whole_digits.empty()) {
        const auto* first = whole_digits.data();
        const auto* last = first + whole_digits.size();
        const auto [end, ec] = std::from_chars(first, last, quantity.whole);
        if (ec == std::errc::result_out_of_range) {
            return tl::unexpected(QuantityError::too_large);
        }
        if (ec != std::errc{} || end != last) {
            return tl::unexpected(QuantityError::malformed);
        }
    }
    if (!fraction_digits.empty()) {
        // Seventeen digits are more than a double can tell apart anyway.
        const std::string decimal = "0." + std::string(fraction_digits.substr(0, 17));
        const auto [end, ec] =
            std::from_chars(decimal.data(), decimal.data() + decimal.size(), quantity.fraction);
        if (ec != std::errc{} || end != decimal.data() + decimal.size()) {
            return tl::unexpected(QuantityError::malformed);
        }
    }
    quantity.unit = text::trim(text.substr(pos));
    return quantity;
}

// whole * multiplier + round(fraction * multiplier), or nullopt on overflow of `limit`.
std::optional<std::uint64_t>
scale(const Quantity& quantity, std::uint64_t multiplier, std::uint64_t limit) {
    if (quantity.whole != 0 && multiplier > limit / quantity.whole) {
        return std::nullopt;
    }
    const std::uint64_t whole = quantity.whole * multiplier;
    // fraction < 1, so the product is below multiplier (<= 2^40): exact enough and in range.
    const auto part = static_cast<std::uint64_t>(
        std::llround(quantity.fraction * static_cast<double>(multiplier)));
    if (part > limit - whole) {
        return std::nullopt;
    }
    return whole + part;
}

struct UnitEntry {
    std::string_view name;
    std::uint64_t multiplier;
};

constexpr std::uint64_t kib = 1024ULL;
constexpr std::uint64_t gib = 1024ULL * mib;
constexpr std::uint64_t tib = 1024ULL * gib;

constexpr std::array<UnitEntry, 13> size_units{{
    {"", mib}, // a bare number is MiB
    {"k", kib},
    {"kib", kib},
    {"m", mib},
    {"mib", mib},
    {"g", gib},
    {"gib", gib},
    {"t", tib},
    {"tib", tib},
    {"kb", 1000ULL},
    {"mb", 1000ULL * 1000ULL},
    {"gb", 1000ULL * 1000ULL * 1000ULL},
    {"tb", 1000ULL * 1000ULL * 1000ULL * 1000ULL},
}};

constexpr std::array<UnitEntry, 5> duration_units{{
    {"", 1000}, // a bare number is seconds
    {"ms", 1},
    {"s", 1000},
    {"m", 60ULL * 1000ULL},
    {"h", 3600ULL * 1000ULL},
}};

template <std::size_t N>
std::optional<std::uint64_t> find_unit(const std::array<UnitEntry, N>& table,
                                       std::string_view unit) {
    for (const auto& entry : table) {
        if (text::iequals(entry.name, unit)) {
            return entry.multiplier;
        }
    }
    return std::nullopt;
}

} // namespace

Result<std::uint64_t> parse_size(std::string_view text) {
    const std::string hint = fmt::format("use a size such as {}", size_forms);
    const auto quantity = split_quantity(text);
    if (!quantity) {
        switch (quantity.error()) {
        case QuantityError::negative:
            return fail(ErrorKind::usage,
                        fmt::format("invalid size \"{}\": must not be negative", text),
                        hint);
        case QuantityError::too_large:
            return fail(
                ErrorKind::usage, fmt::format("invalid size \"{}\": too large", text), hint);
        case QuantityError::malformed:
            break;
        }
        return fail(
            ErrorKind::usage,
            fmt::format("invalid size \"{}\": expected a number with an optional unit", text),
            hint);
    }
    const auto multiplier = find_unit(size_units, quantity->unit);
    if (!multiplier) {
        return fail(ErrorKind::usage,
                    fmt::format("invalid size \"{}\": expected a number with an optional unit "
                                "(unknown unit \"{}\")",
                                text,
                                quantity->unit),
                    hint);
    }
    const auto bytes = scale(*quantity, *multiplier, std::numeric_limits<std::uint64_t>::max());
    if (!bytes) {
        return fail(ErrorKind::usage, fmt::format("invalid size \"{}\": too large", text), hint);
    }
    return *bytes;
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
    const std::string hint = fmt::format("use a duration such as {}", duration_forms);
    const auto quantity = split_quantity(text);
    if (!quantity) {
        switch (quantity.error()) {
        case QuantityError::negative:
            return fail(ErrorKind::usage,
                        fmt::format("invalid duration \"{}\": must not be negative", text),
                        hint);
        case QuantityError::too_large:
            return fail(
                ErrorKind::usage, fmt::format("invalid duration \"{}\": too large", text), hint);
        case QuantityError::malformed:
            break;
        }
        return fail(ErrorKind::usage,
                    fmt::format("invalid duration \"{}\": expected a number with an optional "
                                "unit (ms, s, m, h)",
                                text),
                    hint);
    }
    const auto multiplier = find_unit(duration_units, quantity->unit);
    if (!multiplier) {
        return fail(ErrorKind::usage,
                    fmt::format("invalid duration \"{}\": expected a number with an optional "
                                "unit (ms, s, m, h), not \"{}\"",
                                text,
                                quantity->unit),
                    hint);
    }
    constexpr auto limit =
        static_cast<std::uint64_t>(std::numeric_limits<std::chrono::milliseconds::rep>::max());
    const auto ms = scale(*quantity, *multiplier, limit);
    if (!ms) {
        return fail(
            ErrorKind::usage, fmt::format("invalid duration \"{}\": too large", text), hint);
    }
    // Rounded to the nearest millisecond, except that a duration that is not zero never
    // becomes zero ("0.0001s" is 1ms, as "0.5ms" is).
    const bool nonzero = quantity->whole != 0 || quantity->fraction > 0;
    return std::chrono::milliseconds(
        static_cast<std::chrono::milliseconds::rep>(*ms == 0 && nonzero ? 1 : *ms));
}

Result<unsigned> parse_unsigned(std::string_view text, std::string_view what) {
    const std::string_view trimmed = text::trim(text);
    bool digits_only = !trimmed.empty();
    for (const char c : trimmed) {
        digits_only = digits_only && is_digit(c);
    }
    if (!digits_only) {
        return fail(ErrorKind::usage,
                    fmt::format("invalid {} \"{}\": expected a whole number", what, text),
                    "use digits only, e.g. 0, 1, 10");
    }
    unsigned value = 0;
    const auto* last = trimmed.data() + trimmed.size();
    const auto [end, ec] = std::from_chars(trimmed.data(), last, value);
    if (ec == std::errc::result_out_of_range) {
        return fail(ErrorKind::usage, fmt::format("invalid {} \"{}\": too large", what, text));
    }
    if (ec != std::errc{} || end != last) {
        return fail(ErrorKind::usage,
                    fmt::format("invalid {} \"{}\": expected a whole number", what, text),
                    "use digits only, e.g. 0, 1, 10");
    }
    return value;
}

std::string format_size(std::uint64_t bytes) {
    constexpr std::array<std::string_view, 7> names{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < kib) {
        return fmt::format("{} B", bytes);
    }
    std::size_t unit = 0;
    double value = static_cast<double>(bytes);
    while (value >= 1024.0 && unit + 1 < names.size()) {
        value /= 1024.0;
        ++unit;
    }
    // Rounding can carry into the next unit (1023.7 MiB -> "1 GiB", not "1024 MiB").
    if (std::round(value) >= 1024.0 && unit + 1 < names.size()) {
        value /= 1024.0;
        ++unit;
    }
    const double tenths = std::round(value * 10.0) / 10.0;
    if (tenths >= 10.0) {
        return fmt::format("{:.0f} {}", value, names[unit]);
    }
    if (tenths == std::floor(tenths)) {
        return fmt::format("{:.0f} {}", tenths, names[unit]); // "1 GiB", not "1.0 GiB"
    }
    return fmt::format("{:.1f} {}", tenths, names[unit]);
}

std::chrono::seconds elapsed(std::int64_t since_unix, std::int64_t now_unix) {
    if (since_unix >= now_unix) {
        return std::chrono::seconds(0);
    }
    // now > since, so the difference is positive; it overflows only when since is far below 0.
    if (since_unix < 0 && now_unix > std::numeric_limits<std::int64_t>::max() + since_unix) {
        return std::chrono::seconds(std::numeric_limits<std::int64_t>::max());
    }
    return std::chrono::seconds(now_unix - since_unix);
}

std::string format_duration(std::chrono::seconds duration) {
    const std::int64_t total = duration.count() < 0 ? 0 : duration.count();
    constexpr std::int64_t minute = 60;
    constexpr std::int64_t hour = 60 * minute;
    constexpr std::int64_t day = 24 * hour;
    if (total < minute) {
        return fmt::format("{}s", total);
    }
    if (total < hour) {
        return fmt::format("{}m{:02}s", total / minute, total % minute);
    }
    if (total < day) {
        return fmt::format("{}h{:02}m", total / hour, (total % hour) / minute);
    }
    return fmt::format("{}d{:02}h", total / day, (total % day) / hour);
}

} // namespace withgpu::units
