#include "config/layer.hpp"

#include "config/settings.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace withgpu::config {

std::string label(const Setting& setting, Origin::Kind kind) {
    switch (kind) {
    case Origin::Kind::environment:
        return env_var(setting);
    case Origin::Kind::command_line:
        return flag_label(setting);
    case Origin::Kind::argument:
        return std::string(keyword(setting));
    default:
        return std::string(setting.name);
    }
}

std::string location_prefix(const Entry& entry) {
    return entry.location.empty() ? std::string() : entry.location + ": ";
}

Result<void> check_count_group(const Layer& layer) {
    const auto entry = [&](std::string_view name) -> const Entry* {
        const auto it = std::find_if(
            layer.begin(), layer.end(), [&](const Entry& e) { return e.setting->name == name; });
        return it == layer.end() ? nullptr : &*it;
    };
    const Entry* count = entry("count");
    const Entry* min = entry("min_gpus");
    const Entry* max = entry("max_gpus");
    if (count && (min || max)) {
        const Entry* other = min ? min : max;
        // Layers are in file order: report the second of the two.
        const Entry* later = std::max(count, other, std::less<>());
        const auto kind = count->value.origin.kind;
        return fail(ErrorKind::usage,
                    fmt::format("{}{} cannot be combined with {}",
                                location_prefix(*later),
                                label(*count->setting, kind),
                                label(*other->setting, kind)),
                    fmt::format("use {} for exactly N GPUs, or {} and {} for a range",
                                label(*count->setting, kind),
                                label(*find_setting("min_gpus"), kind),
                                label(*find_setting("max_gpus"), kind)));
    }
    if (min && max &&
        std::get<unsigned>(max->value.parsed) < std::get<unsigned>(min->value.parsed)) {
        const auto kind = max->value.origin.kind;
        return fail(ErrorKind::usage,
                    fmt::format("{}{} {} is below {} {}",
                                location_prefix(*max),
                                label(*max->setting, kind),
                                max->value.text,
                                label(*min->setting, kind),
                                min->value.text),
                    fmt::format("{} must be at least {} (it defaults to it)",
                                label(*max->setting, kind),
                                label(*min->setting, kind)));
    }
    return {};
}

} // namespace withgpu::config
