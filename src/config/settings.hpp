// The setting table: the one place where each setting of with-gpu exists. The command line
// (cli/), the configuration files, the environment, --show-config, --help, the library's
// request and the Python keyword arguments are all derived from it.
#pragma once

#include "config/setting.hpp"

#include <string_view>
#include <vector>

namespace withgpu::config {

// Every setting, in the order --show-config and the documentation use.
[[nodiscard]] const std::vector<Setting>& settings();

// By TOML name ("min_memory"); nullptr when there is none.
[[nodiscard]] const Setting* find_setting(std::string_view name);

// By the library's keyword ("gpus", "min_memory"); nullptr when there is none or the setting
// cannot be given by a caller (banned).
[[nodiscard]] const Setting* find_keyword(std::string_view keyword);

// The profile is chosen with --profile NAME or WITH_GPU_PROFILE (the flag wins).
inline constexpr std::string_view profile_env_var = "WITH_GPU_PROFILE";
inline constexpr std::string_view profile_flag = "--profile";

} // namespace withgpu::config
