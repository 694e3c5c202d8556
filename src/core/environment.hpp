// What a front end (the CLI's main, a library call) starts from: the process environment,
// where the installation keeps what no user may change, and the configuration files' texts.
// Read once and passed down as values.
#pragma once

#include "config/paths.hpp"
#include "config/resolve.hpp"
#include "util/error.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace withgpu::core {

struct ProcessEnvironment {
    std::vector<std::string> variables; // "NAME=value", as environ

    [[nodiscard]] std::optional<std::string> get(std::string_view name) const;
    [[nodiscard]] std::map<std::string, std::string> as_map() const;
    // This process's environment now.
    [[nodiscard]] static ProcessEnvironment current();
};

// Where with-gpu finds what no user may change. The installed program and library always use
// the defaults; no environment variable or flag reaches these (docs/config.md). Only the test
// program tests/e2e builds (with-gpu-test-build) points them elsewhere.
struct Installation {
    std::string system_config = config::system_config_path();
};

// The system file and the user's ($XDG_CONFIG_HOME or ~/.config), where they exist. Only a
// regular file of at most 1 MiB is read: a FIFO, a device or a directory is a usage error, and
// opening never blocks.
[[nodiscard]] Result<config::Files> read_config_files(const ProcessEnvironment& env,
                                                      const Installation& installation);

} // namespace withgpu::core
