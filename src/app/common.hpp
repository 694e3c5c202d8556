// Small helpers shared by the app/ commands.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <set>
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

// Notes about odd files in the lock directory (planted by someone, or left by a crash): what
// with-gpu ignored or could not use, naming the file. Each distinct note is printed once on
// stderr, however often a waiter looks again; nothing with -q.
class Notes {
  public:
    explicit Notes(bool quiet) : m_quiet(quiet) {}
    // Prints the new ones and empties `fresh`.
    void print(std::vector<std::string>& fresh) {
        for (auto& note : fresh) {
            if (!m_quiet && m_seen.insert(note).second) {
                fmt::print(stderr, "with-gpu: note: {}\n", note);
            }
        }
        fresh.clear();
        std::fflush(stderr);
    }

  private:
    bool m_quiet;
    std::set<std::string> m_seen;
};

} // namespace withgpu::app
