// Rendering a selection decision for --dry-run, -v and error messages.
#pragma once

#include "gpu/snapshot.hpp"
#include "selection/select.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace withgpu::report {

[[nodiscard]] nlohmann::json decision_json(const gpu::MachineSnapshot& machine,
                                           const selection::Decision& decision);

// One line per GPU ("GPU 1  NVIDIA A100 ...  rejected: 3.1 GiB free < 20 GiB") then the summary.
[[nodiscard]] std::string decision_text(const gpu::MachineSnapshot& machine,
                                        const selection::Decision& decision);

// Only the rejected GPUs' reasons, one "  GPU n: ..." line each (for error messages).
[[nodiscard]] std::string rejection_lines(const selection::Decision& decision);

[[nodiscard]] const char* outcome_name(selection::Decision::Outcome outcome);

} // namespace withgpu::report
