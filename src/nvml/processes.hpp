// Internal to nvml/: the processes on one GPU, read through the newest process-list ABI the
// driver accepts (docs/design/nvml.md, "Processes", "Process entry stride").
#pragma once

#include "gpu/snapshot.hpp"
#include "nvml/abi.hpp"
#include "nvml/library.hpp"

#include <optional>
#include <vector>

namespace withgpu::nvml {

// What NVML says about the processes on one GPU: pids, kinds and memory. Users and commands
// are not NVML's to know; app/ adds them from /proc.
struct DeviceProcesses {
    // The compute and graphics lists merged by pid; nullopt when the compute list cannot be
    // read, or a call says that the GPU cannot be read any further.
    std::optional<std::vector<gpu::Process>> processes;
    // The failing call's result when `processes` is nullopt.
    nvmlReturn_t failure = NVML_SUCCESS;
};

[[nodiscard]] DeviceProcesses read_device_processes(const Api& api, nvmlDevice_t device);

} // namespace withgpu::nvml
