// The typed settings of one launch, after every source was merged and every value checked:
// what the acquisition path, the CLI and the library act on.
#pragma once

#include "config/setting.hpp"
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
    // Kept beside a running job (run mode only): memory held on the claimed GPUs until the
    // job's own processes use them, and what to do with a job found on GPUs it did not claim.
    HoldAmount hold;
    std::chrono::milliseconds hold_timeout{300000};
    bool kill_misplaced = false;
};

// Applies every value of `settings` (already checked by resolve) in table order.
[[nodiscard]] Launch launch_from(const Settings& settings);

} // namespace withgpu::config
