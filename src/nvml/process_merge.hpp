// Internal to nvml/: turns NVML's compute and graphics process lists into one entry per pid.
#pragma once

#include "gpu/snapshot.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace withgpu::nvml {

// One entry as NVML lists it; memory is nullopt where NVML reports "not available".
struct RawProcess {
    unsigned pid = 0;
    std::optional<std::uint64_t> used_memory_bytes;
};

// Adds one list (all of `kind`) to `merged`, keyed by pid. Within one list a pid appears more
// than once only for separate (MIG) instances, whose memory adds up; across the compute and
// graphics lists NVML reports one process's usage twice, so the larger figure is kept and the
// kind becomes compute_and_graphics. Unknown memory never hides a known figure.
void merge_processes(std::map<unsigned, gpu::Process>& merged,
                     const std::vector<RawProcess>& entries,
                     gpu::Process::Kind kind);

} // namespace withgpu::nvml
