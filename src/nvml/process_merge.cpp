#include "nvml/process_merge.hpp"

#include <algorithm>

namespace withgpu::nvml {

namespace {

std::optional<std::uint64_t> add_known(std::optional<std::uint64_t> a,
                                       std::optional<std::uint64_t> b) {
    if (a && b) {
        return *a + *b;
    }
    return a ? a : b;
}

std::optional<std::uint64_t> max_known(std::optional<std::uint64_t> a,
                                       std::optional<std::uint64_t> b) {
    if (a && b) {
        return std::max(*a, *b);
    }
    return a ? a : b;
}

} // namespace

void merge_processes(std::map<unsigned, gpu::Process>& merged,
                     const std::vector<RawProcess>& entries,
                     gpu::Process::Kind kind) {
    std::map<unsigned, std::optional<std::uint64_t>> per_pid;
    for (const RawProcess& entry : entries) {
        auto [it, inserted] = per_pid.try_emplace(entry.pid, entry.used_memory_bytes);
        if (!inserted) {
            it->second = add_known(it->second, entry.used_memory_bytes);
        }
    }
    for (const auto& [pid, used] : per_pid) {
        auto [it, inserted] = merged.try_emplace(pid);
        gpu::Process& process = it->second;
        if (inserted) {
            process.pid = pid;
            process.kind = kind;
            process.used_memory_bytes = used;
        } else {
            if (process.kind != kind) {
                process.kind = gpu::Process::Kind::compute_and_graphics;
            }
            process.used_memory_bytes = max_known(process.used_memory_bytes, used);
        }
    }
}

} // namespace withgpu::nvml
