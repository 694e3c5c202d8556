// References to GPUs as users write them in --gpu, --exclude and
// CUDA_VISIBLE_DEVICES: an NVML index, a UUID (or unique prefix), a PCI bus id,
// or (only in --exclude) name:SUBSTRING. Pure code.
#pragma once

#include "gpu/snapshot.hpp"
#include "util/error.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace withgpu::selection {

struct GpuRef {
    // minor_number: the N of /dev/nvidiaN, as SLURM names GPUs (never written by users).
    enum class Kind { index, uuid, pci_bus_id, name_substring, minor_number };
    Kind kind = Kind::index;
    std::string text;   // as the user wrote it (for messages)
    unsigned index = 0; // for Kind::index, and the minor number for Kind::minor_number
    // For uuid: "GPU-..." as written (matched case-insensitively, as a prefix like CUDA does).
    // For pci_bus_id: normalised to "DDDDDDDD:BB:DD.F" upper case (domain may be given with 4
    // or 8 digits, or omitted). For name_substring: the substring.
    std::string key;

    friend bool operator==(const GpuRef&, const GpuRef&) = default;
};

// Parses "0,2", "GPU-8a3f...,00000000:17:00.0", "name:V100" (the last only when
// allow_names). Whitespace around items is ignored; empty items are errors
// (ErrorKind::usage, naming the offending item and the accepted forms).
[[nodiscard]] Result<std::vector<GpuRef>>
parse_gpu_list(std::string_view text, std::string_view option_name, bool allow_names);

// Does `ref` designate `gpu`? (index equal / UUID prefix / bus id equal / name contains, the
// last two case-insensitive.)
[[nodiscard]] bool matches(const GpuRef& ref, const gpu::GpuSnapshot& gpu);

// Checks that each UUID reference in `refs` designates at most one GPU of `machine`: a UUID
// prefix must be unique. ErrorKind::usage naming the reference and every GPU it matches.
// `option_name` says where the references came from ("--gpu", "--exclude").
[[nodiscard]] Result<void> check_unique_prefixes(const std::vector<GpuRef>& refs,
                                                 std::string_view option_name,
                                                 const gpu::MachineSnapshot& machine);

// What an inherited CUDA_VISIBLE_DEVICES allows.
struct VisibleDevices {
    bool restricted = false;  // false: variable unset, every GPU is a candidate
    std::vector<GpuRef> refs; // when restricted: the GPUs it names (may be empty: none visible)
    std::string original;     // the variable's value, for messages
    // The variable that restricts: CUDA_VISIBLE_DEVICES, or inside a SLURM allocation
    // SLURM_STEP_GPUS / SLURM_JOB_GPUS (then `refs` are minor numbers).
    std::string source = "CUDA_VISIBLE_DEVICES";

    friend bool operator==(const VisibleDevices&, const VisibleDevices&) = default;
};

// Interprets CUDA_VISIBLE_DEVICES as CUDA does: comma-separated NVML indices (CUDA
// ordinals under CUDA_DEVICE_ORDER=PCI_BUS_ID) or GPU UUIDs ("GPU-" prefix); parsing stops
// at the first invalid item (CUDA ignores the rest); "" and "NoDevFiles" mean no device;
// -1 or any negative index ends the list. MIG identifiers ("MIG-...") are an
// ErrorKind::failed error (not supported yet) rather than a silent wrong GPU.
// `value` is nullopt when the variable is unset.
[[nodiscard]] Result<VisibleDevices>
parse_cuda_visible_devices(const std::optional<std::string>& value);

} // namespace withgpu::selection
