// --show-config: every setting, its effective value and where that value came from.
#pragma once

#include "config/resolve.hpp"

#include <string>

namespace withgpu::config {

// One line per setting in table order, "min_memory = 20G  # <origin>", or
// "gpu = (unset)"; a first comment line names the selected profile, if any.
[[nodiscard]] std::string show(const Settings& settings);

} // namespace withgpu::config
