// What a SLURM job or step was given, read from the variables slurmd and slurmstepd set
// (docs/slurm.md): which GPUs, and under which ids the job's CUDA sees them. Pure code: the
// caller passes the variables' values in.
#pragma once

#include "gpu/snapshot.hpp"
#include "util/error.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace withgpu::slurm {

// The variables that matter, nullopt when unset.
struct Variables {
    std::optional<std::string> job_id;               // SLURM_JOB_ID
    std::optional<std::string> step_id;              // SLURM_STEP_ID
    std::optional<std::string> step_gpus;            // SLURM_STEP_GPUS (an srun step)
    std::optional<std::string> job_gpus;             // SLURM_JOB_GPUS (batch script, prolog)
    std::optional<std::string> gpus_on_node;         // SLURM_GPUS_ON_NODE
    std::optional<std::string> cuda_visible_devices; // CUDA_VISIBLE_DEVICES
};

struct Allocation {
    std::string job_id;
    std::optional<std::string> step_id;
    // The variable the GPUs were read from ("SLURM_STEP_GPUS" or "SLURM_JOB_GPUS"); empty when
    // the allocation holds no GPU.
    std::string source;
    std::string source_value;
    // SLURM's GPU ids in SLURM's order: gres.conf File=/dev/nvidiaN numbers, i.e. NVML minor
    // numbers. Empty: no GPU (--gres=none, or a job that asked for none).
    std::vector<unsigned> minor_numbers;
    // The id of each of them as the job's CUDA knows it, from SLURM's CUDA_VISIBLE_DEVICES
    // (same order): the same numbers without device constraint, 0..n-1 with ConstrainDevices.
    std::vector<std::string> cuda_ids;

    // "job 1234 step 0" / "job 1234"
    [[nodiscard]] std::string describe() const;
    // The CUDA id SLURM gave the GPU with this minor number; nullopt when not allocated.
    [[nodiscard]] std::optional<std::string> cuda_id_of(unsigned minor_number) const;
};

// nullopt outside SLURM (SLURM_JOB_ID unset). SLURM_STEP_GPUS wins over SLURM_JOB_GPUS (an
// srun step inside a batch job sees both). Errors (ErrorKind::usage, naming the variable and
// its value): an id that is not a number, SLURM_GPUS_ON_NODE that is not a number or says
// there are GPUs while no GPU list is set, and a CUDA_VISIBLE_DEVICES that does not have one
// entry per SLURM GPU (with-gpu could not tell which CUDA id is which GPU).
[[nodiscard]] Result<std::optional<Allocation>> read_allocation(const Variables& variables);

// The allocated GPUs as they appear in `machine`, in SLURM's order, found by minor number
// (never by position: under ConstrainDevices NVML and CUDA renumber the GPUs a job sees).
// A SLURM id that no GPU has is skipped.
[[nodiscard]] std::vector<unsigned> allocated_indices(const Allocation& allocation,
                                                      const gpu::MachineSnapshot& machine);

// For --status: "SLURM job 1234 step 0 holds GPU 2, GPU 3 (SLURM_STEP_GPUS=2,3); with-gpu
// uses only these" (or "holds no GPU"), one line with its newline.
[[nodiscard]] std::string allocation_text(const Allocation& allocation,
                                          const gpu::MachineSnapshot& machine);
// For --status --json: {"job_id", "step_id", "source", "gpu_ids", "gpus"} (docs/json.md).
[[nodiscard]] nlohmann::json allocation_json(const Allocation& allocation,
                                             const gpu::MachineSnapshot& machine);

// Parses a comma-separated list of GPU ids as SLURM writes them ("0,2", also "0-3" ranges),
// for `name` in messages. Empty text: no GPU.
[[nodiscard]] Result<std::vector<unsigned>> parse_gpu_ids(std::string_view text,
                                                          std::string_view name);

// Whether a job is still alive, from the output and exit status of
// `scontrol show job --oneliner ID`.
enum class JobPresence {
    alive,   // pending, running, suspended, completing, ...
    gone,    // finished in any way, or unknown to slurmctld ("Invalid job id specified")
    unknown, // scontrol failed otherwise (slurmctld unreachable): keep holding, ask again
};
[[nodiscard]] JobPresence job_presence(int exit_status, std::string_view output);

} // namespace withgpu::slurm
