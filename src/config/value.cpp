#include "config/value.hpp"

#include "selection/gpu_ref.hpp"
#include "util/strings.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <string>

namespace withgpu::config {

namespace {

// The range a TOML integer must be in: the setting's own bounds for whole numbers, seconds
// for durations, MiB for sizes, indices for GPU lists.
struct Bounds {
    std::int64_t least = 0;
    std::int64_t most = UINT_MAX;
};

Bounds integer_bounds(const Setting& setting) {
    using std::chrono::duration_cast;
    using std::chrono::seconds;
    switch (setting.kind) {
    case ValueKind::whole_number:
        return {setting.minimum, setting.maximum};
    case ValueKind::duration:
        return {setting.shortest.count() > 0 ? 1 : 0,
                setting.longest == std::chrono::milliseconds::max()
                    ? std::int64_t{UINT_MAX}
                    : duration_cast<seconds>(setting.longest).count()};
    default:
        return {};
    }
}

// The bound a value broke: "at least 1" for one below it, "at most 4294967295" for one above
// a setting with no maximum of its own, "0 to 100" for a setting with both bounds.
std::string range_text(const Bounds& bounds, bool too_large) {
    if (bounds.most == UINT_MAX) {
        return too_large ? fmt::format("at most {}", bounds.most)
                         : fmt::format("at least {}", bounds.least);
    }
    return fmt::format("{} to {}", bounds.least, bounds.most);
}

Result<void> in_range(const Setting& setting, std::int64_t value) {
    const Bounds bounds = integer_bounds(setting);
    if (value < bounds.least || value > bounds.most) {
        return fail(
            ErrorKind::usage,
            fmt::format("{} is out of range ({})", value, range_text(bounds, value > bounds.most)));
    }
    return {};
}

Result<Checked> gpu_list(const Setting& setting, std::string_view text) {
    auto refs = selection::parse_gpu_list(text, "item", setting.names_allowed);
    if (!refs) {
        return tl::unexpected(refs.error());
    }
    std::vector<std::string> items;
    for (const auto& ref : *refs) {
        items.push_back(ref.text);
    }
    return Checked{text::join(items, ","), std::move(*refs)};
}

Result<Checked> whole_number(const Setting& setting, std::string_view raw, std::string_view text) {
    std::string_view digits = text;
    if (setting.unit != '\0' && !digits.empty() &&
        (digits.back() == setting.unit || digits.back() == text::to_lower(setting.unit))) {
        digits.remove_suffix(1);
    }
    const auto value = units::parse_unsigned(digits, "number");
    if (!value) {
        if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string_view::npos) {
            return fail(ErrorKind::usage,
                        fmt::format("{} is out of range ({})",
                                    digits,
                                    range_text(integer_bounds(setting), true)));
        }
        return fail(ErrorKind::usage, fmt::format("\"{}\" is not a whole number", raw));
    }
    return check_integer(setting, static_cast<std::int64_t>(*value));
}

Result<Checked> boolean(std::string_view raw, std::string_view text) {
    const std::string lower = text::to_lower(text);
    if (lower == "1" || lower == "true" || lower == "yes" || lower == "on") {
        return check_boolean(true);
    }
    if (lower == "0" || lower == "false" || lower == "no" || lower == "off") {
        return check_boolean(false);
    }
    return fail(
        ErrorKind::usage,
        fmt::format("\"{}\" is not a boolean (use 1, 0, true, false, yes, no, on or off)", raw));
}

Result<Checked> path(const Setting& setting, std::string_view raw) {
    if (raw.empty()) {
        return fail(ErrorKind::usage, "must not be empty");
    }
    if (!setting.choices.empty()) {
        const auto allowed = text::split_list(setting.choices);
        if (std::find(allowed.begin(), allowed.end(), text::to_lower(text::trim(raw))) ==
            allowed.end()) {
            return fail(ErrorKind::usage,
                        fmt::format("\"{}\" is not one of {}", raw, text::join(allowed, ", ")));
        }
        const std::string choice = text::to_lower(text::trim(raw));
        return Checked{choice, choice};
    }
    if (setting.kind == ValueKind::absolute_path && raw.front() != '/') {
        // Relative to the directory with-gpu starts in, launches from different directories
        // would not meet.
        return fail(ErrorKind::usage,
                    fmt::format("\"{}\" is not an absolute path", raw),
                    fmt::format("a relative path would depend on the directory with-gpu starts "
                                "in; use an absolute path, e.g. {}",
                                setting.example));
    }
    // Paths and names are kept exactly, spaces included.
    return Checked{std::string(raw), std::string(raw)};
}

Result<Checked> duration(const Setting& setting, std::string_view raw, std::string_view text) {
    const auto value = units::parse_duration(text);
    if (!value) {
        return tl::unexpected(value.error());
    }
    if (*value < setting.shortest) {
        if (value->count() == 0) {
            return fail(ErrorKind::usage, fmt::format("\"{}\" must be more than 0", raw));
        }
        return fail(
            ErrorKind::usage,
            fmt::format("\"{}\" is too short (at least {}ms)", raw, setting.shortest.count()));
    }
    if (*value > setting.longest) {
        return fail(
            ErrorKind::usage,
            fmt::format("\"{}\" is too long (at most {}h)",
                        raw,
                        std::chrono::duration_cast<std::chrono::hours>(setting.longest).count()));
    }
    return Checked{std::string(text), *value};
}

// "off", "0.25" (a fraction of the free memory) or "8G" (a size).
Result<Checked> hold_amount(std::string_view raw, std::string_view text) {
    const std::string lower = text::to_lower(text);
    if (lower == "off" || lower == "0" || lower == "false" || lower == "no") {
        return Checked{"off", HoldAmount{}};
    }
    if (!lower.empty() && lower.find_first_not_of("0123456789.") == std::string::npos &&
        lower.find('.') != std::string::npos) {
        double fraction = 0;
        try {
            std::size_t used = 0;
            fraction = std::stod(lower, &used);
            if (used != lower.size()) {
                fraction = -1;
            }
        } catch (const std::exception&) {
            fraction = -1;
        }
        if (!(fraction > 0 && fraction <= 1)) {
            return fail(ErrorKind::usage,
                        fmt::format("\"{}\" is not a fraction of free memory in (0, 1]", raw));
        }
        return Checked{std::string(text), HoldAmount{fraction, 0}};
    }
    if (lower == "1") {
        return Checked{"1.0", HoldAmount{1.0, 0}};
    }
    // A size needs its unit: a bare "2" could mean 2 MiB or twice the free memory.
    const bool unitless = lower.find_first_not_of("0123456789") == std::string::npos;
    auto bytes = units::parse_size(text);
    if (unitless || !bytes) {
        return fail(ErrorKind::usage,
                    fmt::format("\"{}\" is neither a fraction of free memory (0.25) nor a "
                                "size with its unit (8G)",
                                raw));
    }
    if (*bytes == 0) {
        return Checked{"off", HoldAmount{}};
    }
    return Checked{std::string(text), HoldAmount{0, *bytes}};
}

} // namespace

Result<Checked> check_integer(const Setting& setting, std::int64_t value) {
    if (auto checked = in_range(setting, value); !checked) {
        return tl::unexpected(checked.error());
    }
    const auto number = static_cast<unsigned>(value);
    switch (setting.kind) {
    case ValueKind::size: // MiB
        return Checked{std::to_string(number), Bytes{number * units::mib}};
    case ValueKind::duration: // seconds
        return Checked{std::to_string(number),
                       std::chrono::milliseconds(std::chrono::seconds(number))};
    case ValueKind::gpu_list: // one GPU index
        return gpu_list(setting, std::to_string(number));
    default:
        return Checked{std::to_string(number), number};
    }
}

Checked check_boolean(bool value) {
    return Checked{value ? "true" : "false", value};
}

Result<Checked> check_text(const Setting& setting, std::string_view raw) {
    const std::string_view text = text::trim(raw);
    switch (setting.kind) {
    case ValueKind::whole_number:
        return whole_number(setting, raw, text);
    case ValueKind::boolean:
        return boolean(raw, text);
    case ValueKind::text:
    case ValueKind::absolute_path:
        return path(setting, raw);
    case ValueKind::size: {
        auto bytes = units::parse_size(text);
        if (!bytes) {
            return tl::unexpected(bytes.error());
        }
        return Checked{std::string(text), Bytes{*bytes}};
    }
    case ValueKind::duration:
        return duration(setting, raw, text);
    case ValueKind::gpu_list:
        return gpu_list(setting, text);
    case ValueKind::hold_amount:
        return hold_amount(raw, text);
    }
    return fail(ErrorKind::failed, "unknown value kind"); // unreachable
}

std::string expected_form(const Setting& setting) {
    switch (setting.kind) {
    case ValueKind::whole_number:
        if (setting.maximum != UINT_MAX) {
            return fmt::format("a whole number from {} to {}", setting.minimum, setting.maximum);
        }
        return fmt::format("a whole number >= {}", setting.minimum);
    case ValueKind::gpu_list:
        return "an array of GPUs or a comma-separated string";
    case ValueKind::text:
        return "a string";
    case ValueKind::absolute_path:
        return "a string holding an absolute path";
    case ValueKind::boolean:
        return "true or false";
    case ValueKind::size:
        return "a size string such as \"20G\" or an integer number of MiB";
    case ValueKind::duration:
        return "a duration string such as \"5m\" or an integer number of seconds";
    case ValueKind::hold_amount:
        return "\"off\", a fraction of free memory such as \"0.25\" or a size such as \"8G\"";
    }
    return "a value";
}

} // namespace withgpu::config
