// Small helpers shared by the app/ commands.
#pragma once

#include <string>
#include <vector>

namespace withgpu::app {

// The command line as one string, for claim records, tickets and --status.
inline std::string join_command(const std::vector<std::string>& words) {
    std::string text;
    for (const auto& w : words) {
        if (!text.empty()) {
            text += ' ';
        }
        text += w;
    }
    return text;
}

} // namespace withgpu::app
