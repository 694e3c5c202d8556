// Internal to nvml/: every GPU's figures read through a loaded library (docs/design/nvml.md,
// "What a snapshot holds").
#pragma once

#include "gpu/snapshot.hpp"
#include "nvml/library.hpp"
#include "util/error.hpp"

namespace withgpu::nvml {

// The driver version and every GPU, in index order. One GPU that cannot be read is returned
// with `error` set and never fails the others; only a failed device count is an Error.
[[nodiscard]] Result<gpu::MachineSnapshot> read_snapshot(const Library& library,
                                                         const gpu::Figures& figures);

} // namespace withgpu::nvml
