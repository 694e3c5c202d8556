#include "core/machine.hpp"

#include "procfs/process_info.hpp"

#include <algorithm>
#include <utility>

namespace withgpu::core {

Result<OpenMachine> open_machine(const std::string& nvml_library, const gpu::Figures& figures) {
    auto nvml = nvml::Nvml::open(nvml_library);
    if (!nvml) {
        return tl::unexpected(nvml.error());
    }
    auto snapshot = read_machine(*nvml, figures);
    if (!snapshot) {
        return tl::unexpected(snapshot.error());
    }
    return OpenMachine{std::move(*nvml), std::move(*snapshot)};
}

Result<gpu::MachineSnapshot> read_machine(const nvml::Nvml& nvml, const gpu::Figures& figures) {
    auto machine = nvml.snapshot(figures);
    if (machine && figures.process_details) {
        add_process_details(*machine);
    }
    return machine;
}

void add_process_details(gpu::MachineSnapshot& machine, const gpu::ClaimMap* only) {
    for (gpu::GpuSnapshot& gpu : machine.gpus) {
        if (!gpu.processes || (only != nullptr && only->count(gpu.uuid) == 0)) {
            continue;
        }
        for (gpu::Process& process : *gpu.processes) {
            procfs::ProcessDetails details =
                procfs::read_process_details(static_cast<pid_t>(process.pid));
            process.user = std::move(details.user);
            process.command = std::move(details.command);
        }
    }
}

void join_claims(gpu::MachineSnapshot& machine, gpu::ClaimMap& claims) {
    for (auto& g : machine.gpus) {
        const auto claim = claims.find(g.uuid);
        if (claim == claims.end() || !g.processes || claim->second.slurm_job) {
            continue;
        }
        auto& holder = claim->second;
        if (holder.hold_bytes) {
            const auto holding =
                std::any_of(g.processes->begin(), g.processes->end(), [&](const gpu::Process& p) {
                    return holder.supervisor_pid &&
                           static_cast<int>(p.pid) == *holder.supervisor_pid;
                });
            if (!holding) {
                holder.hold_bytes.reset();
                holder.hold_since_unix.reset();
            }
        }
        const auto root = holder.supervisor_pid ? holder.supervisor_pid : holder.pid;
        if (!root) {
            continue; // an unknown holder: nobody can tell who belongs to it
        }
        for (auto& p : *g.processes) {
            const auto pid = static_cast<pid_t>(p.pid);
            if (!p.command && !p.user) {
                continue; // not visible in /proc here: cannot tell
            }
            p.squatter = !procfs::descends_from(pid, *root) &&
                         !(holder.pid && procfs::descends_from(pid, *holder.pid));
        }
    }
}

} // namespace withgpu::core
