#include "core/placement.hpp"

#include "lock/claim.hpp"
#include "lock/lock_dir.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <unistd.h>

namespace withgpu::core {

namespace {

// Inside SLURM: the allocation's GPUs, by minor number.
Result<selection::VisibleDevices> allocation_devices(const slurm::Allocation& a) {
    if (a.minor_numbers.empty()) {
        return fail(ErrorKind::failed,
                    fmt::format("SLURM {} holds no GPU (SLURM_STEP_GPUS and SLURM_JOB_GPUS are "
                                "unset or empty); inside SLURM with-gpu uses only the "
                                "allocation's GPUs",
                                a.describe()),
                    "ask SLURM for GPUs, e.g. srun --gres=gpu:1 (or --gpus=1)");
    }
    selection::VisibleDevices visible;
    visible.restricted = true;
    visible.source = a.source;
    visible.original = a.source_value;
    for (const unsigned minor : a.minor_numbers) {
        selection::GpuRef ref;
        ref.kind = selection::GpuRef::Kind::minor_number;
        ref.index = minor;
        ref.text = std::to_string(minor);
        ref.key = ref.text;
        visible.refs.push_back(std::move(ref));
    }
    return visible;
}

// The job's own lock directory when a --slurm-prolog holder keeps the allocation's GPUs for
// it, otherwise `lock_dir`. Reads claim records only (no decision is made here).
Result<std::string> allocation_lock_dir(const std::string& lock_dir,
                                        const slurm::Allocation& allocation,
                                        const gpu::MachineSnapshot& machine) {
    std::error_code missing;
    if (!std::filesystem::exists(lock_dir, missing)) {
        return lock_dir;
    }
    auto dir = lock::LockDir::open(lock_dir, false);
    if (!dir) {
        return tl::unexpected(dir.error());
    }
    std::vector<std::string> uuids;
    for (const unsigned index : slurm::allocated_indices(allocation, machine)) {
        uuids.push_back(machine.find(index)->uuid);
    }
    auto claims = lock::read_claims(*dir, uuids);
    if (!claims) {
        return tl::unexpected(claims.error());
    }
    for (const auto& [uuid, holder] : *claims) {
        // Anyone can write "slurm_job" into a record of their own: only root's claim files
        // (slurmd runs the prolog as root) and our own are trusted to say so.
        const bool trusted = holder.file_uid == 0U || holder.file_uid == ::geteuid();
        if (holder.slurm_job == allocation.job_id && trusted) {
            return job_lock_dir(lock_dir, allocation.job_id);
        }
    }
    return lock_dir;
}

} // namespace

Result<Placement> place(const config::Launch& launch, const ProcessEnvironment& env) {
    Placement placement;
    placement.request = launch.request;
    placement.lock_dir = launch.lock_dir;
    auto allocation = slurm_allocation(env);
    if (!allocation) {
        return tl::unexpected(allocation.error());
    }
    placement.allocation = std::move(*allocation);
    auto visible = placement.allocation
                       ? allocation_devices(*placement.allocation)
                       : selection::parse_cuda_visible_devices(env.get("CUDA_VISIBLE_DEVICES"));
    if (!visible) {
        return tl::unexpected(visible.error());
    }
    placement.request.visible = std::move(*visible);
    return placement;
}

Result<void>
settle(Placement& placement, const gpu::MachineSnapshot& machine, const OptionNames& names) {
    // A UUID prefix that matches two GPUs would silently pick one of them.
    const selection::Request& r = placement.request;
    for (const auto& [refs, name] : {std::pair{&r.only, names.only},
                                     std::pair{&r.banned, "banned (system configuration)"},
                                     std::pair{&r.exclude, names.exclude}}) {
        if (auto unique = selection::check_unique_prefixes(*refs, name, machine); !unique) {
            return tl::unexpected(unique.error());
        }
    }
    if (placement.allocation) {
        auto lock_dir = allocation_lock_dir(placement.lock_dir, *placement.allocation, machine);
        if (!lock_dir) {
            return tl::unexpected(lock_dir.error());
        }
        placement.lock_dir = std::move(*lock_dir);
    }
    return {};
}

gpu::Figures figures_for(const Placement& placement) {
    gpu::Figures figures = selection::figures_for(placement.request);
    figures.placement = placement.allocation.has_value();
    return figures;
}

std::string child_cuda_id(const Placement& placement, const gpu::GpuSnapshot& gpu) {
    if (placement.allocation && gpu.minor_number) {
        return placement.allocation->cuda_id_of(*gpu.minor_number).value_or("");
    }
    return {};
}

std::string own_cuda_id(const Placement& placement, const gpu::GpuSnapshot& gpu) {
    if (std::string slurm_id = child_cuda_id(placement, gpu); !slurm_id.empty()) {
        return slurm_id;
    }
    const selection::VisibleDevices& visible = placement.request.visible;
    if (!visible.restricted || placement.allocation) {
        return std::to_string(gpu.index);
    }
    // CUDA numbers the visible GPUs in the order CUDA_VISIBLE_DEVICES lists them.
    const auto it = std::find_if(visible.refs.begin(), visible.refs.end(), [&](const auto& ref) {
        return selection::matches(ref, gpu);
    });
    return it == visible.refs.end() ? std::to_string(gpu.index)
                                    : std::to_string(it - visible.refs.begin());
}

Result<std::optional<slurm::Allocation>> slurm_allocation(const ProcessEnvironment& env) {
    slurm::Variables variables;
    variables.job_id = env.get("SLURM_JOB_ID");
    variables.step_id = env.get("SLURM_STEP_ID");
    variables.step_gpus = env.get("SLURM_STEP_GPUS");
    variables.job_gpus = env.get("SLURM_JOB_GPUS");
    variables.gpus_on_node = env.get("SLURM_GPUS_ON_NODE");
    variables.cuda_visible_devices = env.get("CUDA_VISIBLE_DEVICES");
    return slurm::read_allocation(variables);
}

std::string job_lock_dir(const std::string& lock_dir, const std::string& job_id) {
    return lock_dir + "/slurm-job-" + job_id;
}

} // namespace withgpu::core
