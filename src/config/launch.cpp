#include "config/launch.hpp"

#include "config/resolve.hpp"
#include "config/settings.hpp"

namespace withgpu::config {

Launch launch_from(const Settings& settings) {
    Launch launch;
    for (const auto& setting : config::settings()) {
        if (const Value* value = settings.find(setting.name)) {
            setting.apply(value->parsed, launch);
        }
    }
    return launch;
}

} // namespace withgpu::config
