// Checking one value of a setting, whatever source it came from: the one parse of each value.
// Messages carry no location (the caller adds "FILE:LINE:COL: key: ", "--flag: " ...); hints
// are left empty where the caller's example fits better.
#pragma once

#include "config/setting.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace withgpu::config {

struct Checked {
    // Normalised to the text the command line accepts: sizes "20G" or "2048" (MiB), lists
    // "0,2,name:T4", booleans "true"/"false", durations "5m" or "90" (seconds), numbers "10"
    // (unit letters dropped). --show-config prints it.
    std::string text;
    Parsed parsed;
};

// Text as written in the environment, on the command line, in a TOML string or by a caller.
[[nodiscard]] Result<Checked> check_text(const Setting& setting, std::string_view raw);

// A TOML integer for a whole number, a size (MiB), a duration (seconds) or a GPU index.
[[nodiscard]] Result<Checked> check_integer(const Setting& setting, std::int64_t value);

// A TOML boolean.
[[nodiscard]] Checked check_boolean(bool value);

// What a setting's values look like, for "expected ..." messages: "a whole number >= 1".
[[nodiscard]] std::string expected_form(const Setting& setting);

} // namespace withgpu::config
