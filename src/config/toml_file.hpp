// Reading one configuration file (TOML): its [defaults] table and [profiles.NAME] tables,
// every value checked, with file:line:column for every entry and every error. Internal to
// config/.
#pragma once

#include "config/layer.hpp"

#include <map>
#include <string>
#include <string_view>

namespace withgpu::config {

struct ParsedFile {
    Layer defaults;
    std::map<std::string, Layer> profiles;
};

enum class FileRole { system, user };

// `system_path` is named in hints about settings that belong in the system file.
[[nodiscard]] Result<ParsedFile>
parse_file(const ConfigFile& file, FileRole role, std::string_view system_path);

// A setting's TOML example ("min_memory = \"20G\"") is a document that parse_file accepts.
[[nodiscard]] bool toml_example_is_accepted(const Setting& setting);

} // namespace withgpu::config
