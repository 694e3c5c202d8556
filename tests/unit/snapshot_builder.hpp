// Plain snapshots for the pure tests: a healthy, idle A100 80GB per index, which
// each test then edits field by field to make exactly the point it checks.
#pragma once

#include "gpu/snapshot.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace withgpu::testing {

inline constexpr std::uint64_t mib_bytes = 1024ULL * 1024ULL;
inline constexpr std::uint64_t gib_bytes = 1024ULL * mib_bytes;

// Whole or fractional GiB in bytes (rounded down to a byte).
inline std::uint64_t gib(double amount) {
    return static_cast<std::uint64_t>(amount * static_cast<double>(gib_bytes));
}

inline std::string two_hex_digits(unsigned value) {
    constexpr const char* digits = "0123456789abcdef";
    return {digits[(value >> 4U) & 0xFU], digits[value & 0xFU]};
}

// "GPU-1Naa1bb2-..." : index 0 -> "GPU-10aa...", 3 -> "GPU-13aa...", so "GPU-13" is a unique
// prefix of GPU 3 (for indices below 90).
inline std::string uuid_for(unsigned index) {
    return "GPU-" + std::to_string(10 + index) + "aa1bb2-cc3d-4e5f-8a9b-0c1d2e3f4a5b";
}

// NVML form, lower-case hex on purpose so that matching must normalise: GPU 0 is on bus 0x17.
inline std::string bus_id_for(unsigned index) {
    return "00000000:" + two_hex_digits(0x17 + index) + ":00.0";
}

inline gpu::GpuSnapshot make_gpu(unsigned index,
                                 std::string name = "NVIDIA A100-SXM4-80GB",
                                 double total_gib = 80.0,
                                 double free_gib = 80.0) {
    gpu::GpuSnapshot gpu;
    gpu.index = index;
    gpu.uuid = uuid_for(index);
    gpu.name = std::move(name);
    gpu.pci_bus_id = bus_id_for(index);
    gpu.memory_total_bytes = gib(total_gib);
    gpu.memory_free_bytes = gib(free_gib);
    gpu.memory_used_bytes = gib(total_gib) - gib(free_gib);
    gpu.utilization_percent = 0;
    gpu.temperature_c = 35;
    gpu.power_w = 60.0;
    gpu.power_limit_w = 400.0;
    gpu.processes = std::vector<gpu::Process>{};
    return gpu;
}

inline gpu::Process make_process(unsigned pid, std::uint64_t used_bytes = gib(1.0)) {
    gpu::Process process;
    process.pid = pid;
    process.used_memory_bytes = used_bytes;
    return process;
}

// `count` identical GPUs, indices 0..count-1.
inline gpu::MachineSnapshot make_machine(unsigned count) {
    gpu::MachineSnapshot machine;
    machine.driver_version = "550.54.15";
    for (unsigned i = 0; i < count; ++i) {
        machine.gpus.push_back(make_gpu(i));
    }
    return machine;
}

} // namespace withgpu::testing
