// Plain value types describing what a machine's GPUs look like at one moment.
// Produced by nvml/ (I/O), consumed by selection/ and report/ (pure).
// A metric the driver does not report is std::nullopt ("unknown"), never 0.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace withgpu::gpu {

struct Process {
    enum class Kind { compute, graphics, compute_and_graphics };

    unsigned pid = 0;
    Kind kind = Kind::compute;
    std::optional<std::uint64_t> used_memory_bytes; // NVML may not report it
    // Not NVML's to know: app/ adds them from /proc, when the process is visible there.
    std::optional<std::string> user;    // the owner's name
    std::optional<std::string> command; // from /proc/<pid>/cmdline
    // On a claimed GPU: not the claim holder's process nor one of its descendants (core/
    // marks it where it can tell: the holder's pid is known and /proc shows the process).
    bool squatter = false;
};

struct GpuSnapshot {
    unsigned index = 0;     // NVML index (= PCI bus order = CUDA order under PCI_BUS_ID)
    std::string uuid;       // "GPU-xxxxxxxx-..."; empty only if the GPU failed before it was read
    std::string name;       // "NVIDIA A100-SXM4-80GB"
    std::string pci_bus_id; // "00000000:17:00.0" as NVML reports it
    // N of the GPU's device file /dev/nvidiaN (what SLURM's gres.conf File= names); unknown
    // when the driver does not say.
    std::optional<unsigned> minor_number;
    // Logical CPUs close to the GPU (NVML's ideal CPU affinity), ascending; unknown when the
    // driver does not say.
    std::optional<std::vector<unsigned>> local_cpus;

    // Set when this GPU could not be read (e.g. "GPU is lost"): it is reported and never chosen.
    std::optional<std::string> error;

    std::optional<std::uint64_t> memory_total_bytes;
    std::optional<std::uint64_t> memory_used_bytes;
    std::optional<std::uint64_t> memory_free_bytes;
    // What the driver keeps for itself (nvmlDeviceGetMemoryInfo_v2); it is never free, so
    // total - reserved is the most a job can ever get. Unknown with the v1 call.
    std::optional<std::uint64_t> memory_reserved_bytes;
    std::optional<unsigned> utilization_percent;
    std::optional<unsigned> temperature_c;
    std::optional<double> power_w;
    std::optional<double> power_limit_w;

    // Compute and graphics processes, merged by pid; nullopt when the list could not be read.
    std::optional<std::vector<Process>> processes;
};

// The figures that only some readers of a snapshot need, each one or two NVML calls per GPU:
// a launch reads those its filters use, --status and --dry-run read all. Identity (name, UUID,
// PCI bus id), memory and processes are always read. A figure not read is unknown.
struct Figures {
    bool utilization = true;
    bool temperature = true;
    bool power = true;     // draw and limit
    bool placement = true; // minor number and local CPUs
    // Each process's user and command, from /proc (not NVML). Without them, a look fills them
    // in for the processes on claimed GPUs only, where they tell squatters apart.
    bool process_details = true;

    [[nodiscard]] static constexpr Figures all() { return {}; }
    [[nodiscard]] static constexpr Figures none() { return {false, false, false, false, false}; }
    friend bool operator==(const Figures&, const Figures&) = default;
};

struct MachineSnapshot {
    std::string driver_version; // empty when unknown
    std::vector<GpuSnapshot> gpus;
    Figures figures; // what was read: a second snapshot for the same use reads the same

    // The GPU with this NVML index, or nullptr.
    [[nodiscard]] const GpuSnapshot* find(unsigned index) const {
        for (const auto& g : gpus) {
            if (g.index == index) {
                return &g;
            }
        }
        return nullptr;
    }

    // The UUIDs of every GPU whose UUID could be read (the ones that can carry a claim).
    [[nodiscard]] std::vector<std::string> uuids() const {
        std::vector<std::string> result;
        for (const auto& g : gpus) {
            if (!g.uuid.empty()) {
                result.push_back(g.uuid);
            }
        }
        return result;
    }
};

} // namespace withgpu::gpu
