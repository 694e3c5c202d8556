#include "app/machine.hpp"

#include "procfs/process_info.hpp"

#include <utility>

namespace withgpu::app {

Result<gpu::MachineSnapshot> read_machine(const nvml::Nvml& nvml) {
    auto machine = nvml.snapshot();
    if (machine) {
        add_process_details(*machine);
    }
    return machine;
}

void add_process_details(gpu::MachineSnapshot& machine) {
    for (gpu::GpuSnapshot& gpu : machine.gpus) {
        if (!gpu.processes) {
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

} // namespace withgpu::app
