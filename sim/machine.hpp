// The machine the NVML simulator pretends to drive, as described by a JSON
// machine file (schema in docs/simulator.md). Parsing is strict: unknown keys,
// wrong types and impossible values are errors, so typos in test fixtures fail
// loudly instead of silently falling back to defaults.
#pragma once

#include <compare>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace withgpu::sim {

// Handles live in a fixed static array, so the machine size is bounded.
inline constexpr std::size_t max_gpus = 64;

enum class ProcessType { compute, graphics, both };

struct SimProcess {
    unsigned int pid = 0;
    std::optional<unsigned long long> used_memory_mib; // nullopt: NVML_VALUE_NOT_AVAILABLE
    ProcessType type = ProcessType::compute;
    // Listed only from this process list call on (0: always), counting the calls on its GPU
    // in the calling process: a program that appears between two reads (tests of with-gpu's
    // second look after claiming).
    unsigned long long listed_after_calls = 0;
};

// Return codes injected per exported function name, e.g. "nvmlDeviceGetPowerUsage" -> 3 (an
// NVML code) or "cuMemAlloc_v2" -> 2 (a CUDA code: cu* functions take CUDA's codes).
using FaultTable = std::map<std::string, int, std::less<>>;

// For a delayed fault: how many calls go through before it applies.
using FaultCounts = std::map<std::string, unsigned long long, std::less<>>;

// The code injected for `function`; 0 (success in both APIs) when none is.
[[nodiscard]] inline int fault_for(const FaultTable& faults, std::string_view function) {
    const auto it = faults.find(function);
    return it == faults.end() ? 0 : it->second;
}

struct SimGpu {
    std::string name;
    std::string uuid;
    unsigned int pci_domain = 0;
    unsigned int pci_bus = 0;
    unsigned int pci_device = 0;
    unsigned int pci_device_id = 0; // PCI device id (without the vendor half)
    unsigned int minor_number = 0;  // N of /dev/nvidiaN (default: the GPU's place in the file)
    // Logical CPUs close to the GPU, ascending; nullopt: nvmlDeviceGetCpuAffinity answers
    // NOT_SUPPORTED.
    std::optional<std::vector<unsigned int>> cpu_affinity;
    unsigned long long memory_total_mib = 0;
    unsigned long long memory_reserved_mib = 0;
    unsigned long long memory_other_used_mib = 0;
    // nullopt means the driver answers NOT_SUPPORTED for this metric.
    std::optional<unsigned int> utilization_percent;
    std::optional<unsigned int> memory_utilization_percent;
    std::optional<unsigned int> temperature_c;
    std::optional<unsigned int> power_mw;
    std::optional<unsigned int> power_limit_mw;
    std::vector<SimProcess> processes;
    bool lost = false;
    FaultTable faults;
    FaultCounts fault_after;          // cu* functions only (the CUDA simulator counts the calls)
    unsigned int process_stride = 24; // bytes per entry written by *RunningProcesses_v3
    // What the CUDA simulator charges for a primary context while it is retained.
    unsigned long long cuda_context_mib = 300;
};

// Where a GPU sits on the PCI bus (the function is always 0); how the NVML and CUDA
// simulators agree on which GPU is which.
struct PciAddress {
    unsigned int domain = 0;
    unsigned int bus = 0;
    unsigned int device = 0;
    auto operator<=>(const PciAddress&) const = default; // NOLINT(modernize-use-nullptr): a
                                                         // clang-tidy 14 false positive
};

[[nodiscard]] inline PciAddress address_of(const SimGpu& gpu) noexcept {
    return {gpu.pci_domain, gpu.pci_bus, gpu.pci_device};
}

struct Machine {
    std::string driver_version;
    int init_error = 0; // 0: nvmlInit succeeds
    FaultTable faults;  // system-level functions (nvmlSystemGetDriverVersion, cuInit, ...)
    int cuda_driver_version = 12040; // cuDriverGetVersion
    std::vector<SimGpu> gpus;
};

struct ParsedMachine {
    std::optional<Machine> machine; // set on success
    std::string error;              // set on failure: what is wrong and where in the file
};

// Parses the text of a machine file. Never throws.
[[nodiscard]] ParsedMachine parse_machine(std::string_view json_text) noexcept;

// Memory figures in bytes as NVML's _v2 memory call reports them:
// total = reserved + used + free, used = processes + memory_other_used. Free is 0 when the
// processes (the CUDA simulator's included) would not fit.
struct MemoryFigures {
    unsigned long long total = 0;
    unsigned long long reserved = 0;
    unsigned long long used = 0;
    unsigned long long free = 0;
};
[[nodiscard]] MemoryFigures memory_figures(const SimGpu& gpu) noexcept;

// NVIDIA's wording for a return code ("Not Supported", "GPU is lost", ...).
[[nodiscard]] const char* error_string(int code) noexcept;

// cuda.h's name ("CUDA_ERROR_OUT_OF_MEMORY") and the driver's wording ("out of memory") for a
// CUresult; nullptr for a code the simulator does not know.
[[nodiscard]] const char* cuda_error_name(int code) noexcept;
[[nodiscard]] const char* cuda_error_string(int code) noexcept;

} // namespace withgpu::sim
