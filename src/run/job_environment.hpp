// The environment the job sees: the caller's, with the GPU variables set. Pure.
#pragma once

#include <string>
#include <vector>

namespace withgpu::run {

struct ChosenGpu {
    unsigned index = 0; // NVML index
    std::string uuid;
    // The id to put in CUDA_VISIBLE_DEVICES when it is not the NVML index: inside a SLURM
    // allocation, the id SLURM gave the job's CUDA for this GPU (docs/slurm.md).
    std::string visible_id{};
};

// Returns `parent` ("NAME=value" entries) with CUDA_VISIBLE_DEVICES set to the chosen NVML
// indices (or their visible_id) in the given order, CUDA_DEVICE_ORDER=PCI_BUS_ID (so that CUDA
// numbers devices as NVML does), and WITH_GPU_UUIDS set to their UUIDs; earlier values of these are
// replaced.
[[nodiscard]] std::vector<std::string> job_environment(const std::vector<std::string>& parent,
                                                       const std::vector<ChosenGpu>& gpus);

} // namespace withgpu::run
