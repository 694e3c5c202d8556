// The GPUs as every command sees them: NVML knows the processes' pids, /proc knows whose
// they are and what they run. nvml/ and procfs/ never call each other; they meet here.
#pragma once

#include "gpu/claim.hpp"
#include "gpu/snapshot.hpp"
#include "nvml/nvml.hpp"
#include "util/error.hpp"

#include <string>

namespace withgpu::core {

// A snapshot through `nvml` of `figures`, with add_process_details applied when they ask for
// process details.
[[nodiscard]] Result<gpu::MachineSnapshot>
read_machine(const nvml::Nvml& nvml, const gpu::Figures& figures = gpu::Figures::all());

// NVML opened and the GPUs read once: what most commands start from. `nvml` stays open for
// looking again (a wait) until this is destroyed.
struct OpenMachine {
    nvml::Nvml nvml;
    gpu::MachineSnapshot snapshot;
};
[[nodiscard]] Result<OpenMachine> open_machine(const std::string& nvml_library,
                                               const gpu::Figures& figures = gpu::Figures::all());

// Joins the claims with what NVML and /proc show now:
// - marks the processes on claimed GPUs that are neither the claim holder's (with-gpu, or the
//   program that took a lease) nor its descendants: squatters. Only where the holder's pid is
//   known and not a SLURM job's holder (whose job runs elsewhere in the process tree);
// - drops a recorded hold whose holder has no memory on the GPU any more (a with-gpu killed
//   with -9 cannot correct its record, but the driver freed its memory).
void join_claims(gpu::MachineSnapshot& machine, gpu::ClaimMap& claims);

// Fills each process's user and command from /proc, where the process is visible (nullopt
// otherwise: gone, another PID namespace, hidepid); only on the GPUs named in `only` when given.
void add_process_details(gpu::MachineSnapshot& machine, const gpu::ClaimMap* only = nullptr);

} // namespace withgpu::core
