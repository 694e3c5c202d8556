// Where a launch may take GPUs: its request restricted to what its environment allows (an
// inherited CUDA_VISIBLE_DEVICES, or a SLURM allocation's GPUs), the lock directory it
// claims in, and how CUDA will number what it gets.
#pragma once

#include "config/launch.hpp"
#include "core/environment.hpp"
#include "gpu/snapshot.hpp"
#include "selection/select.hpp"
#include "slurm/allocation.hpp"
#include "util/error.hpp"

#include <optional>
#include <string>

namespace withgpu::core {

struct Placement {
    selection::Request request; // with `visible` filled in
    std::optional<slurm::Allocation> allocation;
    std::string lock_dir; // the launch's, or a prolog-held SLURM job's own (docs/slurm.md)
};

// From the typed settings and the environment, before NVML is read. Inside SLURM the
// allocation, not CUDA_VISIBLE_DEVICES, says which GPUs are ours (under ConstrainDevices
// CUDA_VISIBLE_DEVICES restarts at 0); an allocation without GPUs is an error.
[[nodiscard]] Result<Placement> place(const config::Launch& launch, const ProcessEnvironment& env);

// What needs the machine: a UUID prefix must name one GPU, and inside an allocation whose GPUs
// a --slurm-prolog holder keeps, the launch claims in the job's own lock directory.
// `option_names`: how the messages name --gpu/--exclude ("--gpu" for the CLI, "gpus" for a
// library caller).
struct OptionNames {
    const char* only = "--gpu";
    const char* exclude = "--exclude";
};
[[nodiscard]] Result<void>
settle(Placement& placement, const gpu::MachineSnapshot& machine, const OptionNames& names = {});

// What a launch must read of each GPU: its thresholds' figures and, inside a SLURM
// allocation, the minor numbers that name the allocation's GPUs.
[[nodiscard]] gpu::Figures figures_for(const Placement& placement);

// The id a child process started with a fresh CUDA_VISIBLE_DEVICES sees `gpu` under: SLURM's
// inside an allocation, otherwise "" (the child gets the NVML index).
[[nodiscard]] std::string child_cuda_id(const Placement& placement, const gpu::GpuSnapshot& gpu);

// The id under which this process's own CUDA numbers `gpu`: SLURM's inside an allocation, its
// place in an inherited CUDA_VISIBLE_DEVICES, otherwise its NVML index (CUDA numbers GPUs in
// the PCI order under CUDA_DEVICE_ORDER=PCI_BUS_ID).
[[nodiscard]] std::string own_cuda_id(const Placement& placement, const gpu::GpuSnapshot& gpu);

// Inside a SLURM job: the allocation from SLURM's variables (nullopt outside SLURM).
[[nodiscard]] Result<std::optional<slurm::Allocation>>
slurm_allocation(const ProcessEnvironment& env);

// "<lock_dir>/slurm-job-<id>": where a prolog-held job's own launches claim.
[[nodiscard]] std::string job_lock_dir(const std::string& lock_dir, const std::string& job_id);

} // namespace withgpu::core
