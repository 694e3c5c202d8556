// One source's settings (a file's table, the environment, the command line, the caller's
// arguments) on their way to being merged by resolve(). Internal to config/.
#pragma once

#include "config/resolve.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace withgpu::config {

struct Entry {
    const Setting* setting = nullptr;
    Value value;
    std::string location; // "FILE:LINE:COLUMN" for file entries, else empty
};

using Layer = std::vector<Entry>; // in the source's order (file order for files)

// What the user sees for a setting in messages about one kind of source: "--max-gpus",
// "WITH_GPU_MAX_GPUS", "max_gpus".
[[nodiscard]] std::string label(const Setting& setting, Origin::Kind kind);

// "FILE:LINE:COLUMN: " for file entries, "" for the others.
[[nodiscard]] std::string location_prefix(const Entry& entry);

// The rules within one layer: count is not combined with min_gpus/max_gpus, and
// max_gpus >= min_gpus.
[[nodiscard]] Result<void> check_count_group(const Layer& layer);

} // namespace withgpu::config
