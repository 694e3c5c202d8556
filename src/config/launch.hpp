// The typed settings of one launch, after every source was merged and every value checked:
// what the acquisition path, the CLI and the library act on.
#pragma once

#include "selection/select.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace withgpu::config {

struct Settings;

struct Launch {
    selection::Request request; // the filters; without `visible` (the caller's environment)
    bool wait = false;          // wait (also implied by timeout)
    std::optional<std::chrono::milliseconds> timeout;
    std::chrono::milliseconds poll{2000};
    std::string lock_dir;
    std::string nvml_library; // empty: the loader's search for libnvidia-ml.so.1
};

// Applies every value of `settings` (already checked by resolve) in table order.
[[nodiscard]] Launch launch_from(const Settings& settings);

} // namespace withgpu::config
