// Small helpers shared by the app/ commands.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace withgpu::app {

// Wall-clock seconds since the epoch: for claim records, tickets and reason texts.
inline std::int64_t now_unix() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

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
