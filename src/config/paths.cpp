#include "config/paths.hpp"

namespace withgpu::config {

std::string system_config_path() {
    return "/etc/with-gpu/config.toml";
}

std::optional<std::string> user_config_path(std::string_view xdg_config_home,
                                            std::string_view home) {
    // The XDG base directory specification says relative values are to be ignored.
    std::string base;
    std::string_view below;
    if (!xdg_config_home.empty() && xdg_config_home.front() == '/') {
        base = xdg_config_home;
        below = "with-gpu/config.toml";
    } else if (!home.empty()) {
        base = home;
        below = ".config/with-gpu/config.toml";
    } else {
        return std::nullopt;
    }
    if (base.back() != '/') {
        base += '/';
    }
    return base + std::string(below);
}

} // namespace withgpu::config
