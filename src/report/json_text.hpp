// Text in report/'s JSON documents: JSON must be UTF-8, and names from the driver, command
// lines and user names may not be; one Latin-1 argument must not make a document unprintable.
#pragma once

#include "util/text.hpp"

#include <nlohmann/json.hpp>

#include <string_view>

namespace withgpu::report {

[[nodiscard]] inline nlohmann::json text_json(std::string_view text) {
    return text::valid_utf8(text);
}

} // namespace withgpu::report
