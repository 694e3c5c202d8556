#include "config/show.hpp"

#include "config/settings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace withgpu::config {

std::string show(const Settings& settings) {
    struct Line {
        std::string left;
        std::string comment;
    };
    std::vector<Line> lines;
    std::size_t width = 0;
    const Value* banned = settings.find("banned");
    for (const auto& setting : config::settings()) {
        const Value* value = settings.find(setting.name);
        if (!value) {
            lines.push_back({fmt::format("{} = (unset)", setting.name), {}});
            continue;
        }
        std::string comment = value->origin.where;
        if (setting.name == "exclude" && banned) {
            comment =
                value->origin == banned->origin
                    ? fmt::format("banned ({})", banned->origin.where)
                    : fmt::format("{} + banned ({})", value->origin.where, banned->origin.where);
        }
        lines.push_back({fmt::format("{} = {}", setting.name, value->text), std::move(comment)});
        width = std::max(width, lines.back().left.size());
    }
    std::string out;
    if (settings.profile) {
        out += fmt::format(
            "# profile {} (from {})\n", settings.profile->text, settings.profile->origin.where);
    }
    for (const auto& line : lines) {
        if (line.comment.empty()) {
            out += line.left + "\n";
        } else {
            out += fmt::format("{:<{}}  # {}\n", line.left, width, line.comment);
        }
    }
    return out;
}

} // namespace withgpu::config
