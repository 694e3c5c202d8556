// Where the configuration files are. Pure: the caller passes the environment's values in.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace withgpu::config {

// "/etc/with-gpu/config.toml".
[[nodiscard]] std::string system_config_path();

// "$XDG_CONFIG_HOME/with-gpu/config.toml" when XDG_CONFIG_HOME is an absolute path, else
// "$HOME/.config/with-gpu/config.toml"; nullopt when neither is usable. Empty means unset.
[[nodiscard]] std::optional<std::string> user_config_path(std::string_view xdg_config_home,
                                                          std::string_view home);

} // namespace withgpu::config
