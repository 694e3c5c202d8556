#include "nvml/processes.hpp"

#include "nvml/process_merge.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>

namespace withgpu::nvml {

namespace {

struct ProcessList {
    nvmlReturn_t rc = NVML_ERROR_FUNCTION_NOT_FOUND;
    std::vector<RawProcess> entries;
};

std::optional<std::uint64_t> process_memory(unsigned long long used) {
    if (used == NVML_VALUE_NOT_AVAILABLE_ULL) {
        return std::nullopt;
    }
    return static_cast<std::uint64_t>(used);
}

// NVML's size-query protocol: ask with no room to learn the count, then retry with room to
// spare while the list keeps growing between calls. `fetch(capacity, count)` calls NVML with
// room for `capacity` entries and leaves NVML's count in `count`.
template <typename Fetch> nvmlReturn_t size_query(Fetch& fetch, unsigned& count) {
    constexpr int max_attempts = 5;
    constexpr unsigned max_processes = 1U << 16U; // a wilder count is a driver bug
    count = 0;
    nvmlReturn_t rc = fetch(0U, count);
    if (rc == NVML_SUCCESS) {
        count = 0; // no room was given, so nothing was returned
        return rc;
    }
    for (int attempt = 0; attempt < max_attempts && rc == NVML_ERROR_INSUFFICIENT_SIZE; ++attempt) {
        if (count > max_processes) {
            return NVML_ERROR_INSUFFICIENT_SIZE;
        }
        const unsigned capacity = count + count / 4 + 8;
        count = capacity;
        rc = fetch(capacity, count);
        count = std::min(count, capacity);
    }
    return rc;
}

// Bytes the _v3 calls are told they can use per entry, and the most a driver may write.
constexpr std::size_t narrow_entry = sizeof(nvmlProcessInfo_v2_t);
constexpr std::size_t wide_entry = sizeof(nvmlProcessInfo_v3_wide_t);
constexpr unsigned char sentinel = 0xA5;

// A _v3 call. nvml.h says 24-byte entries, but some drivers wrote 32-byte ones; the buffer has
// room for the wider layout, pre-filled with a sentinel, and the bytes just past n * 24 show
// which stride was used (docs/design/nvml.md, "Process entry stride").
ProcessList read_v3(decltype(&::nvmlDeviceGetComputeRunningProcesses_v3) call,
                    nvmlDevice_t device) {
    std::vector<nvmlProcessInfo_v2_t> storage;
    auto fetch = [&](unsigned capacity, unsigned& count) {
        if (capacity == 0) {
            return call(device, &count, nullptr);
        }
        storage.assign((capacity * wide_entry + narrow_entry - 1) / narrow_entry, {});
        std::memset(storage.data(), sentinel, storage.size() * narrow_entry);
        return call(device, &count, storage.data());
    };
    ProcessList list;
    unsigned count = 0;
    list.rc = size_query(fetch, count);
    if (list.rc != NVML_SUCCESS || count == 0) {
        return list;
    }
    const auto* bytes = reinterpret_cast<const unsigned char*>(storage.data());
    const std::size_t n = count;
    const bool wide = std::any_of(bytes + n * narrow_entry,
                                  bytes + n * wide_entry,
                                  [](unsigned char b) { return b != sentinel; });
    const std::size_t stride = wide ? wide_entry : narrow_entry;
    for (std::size_t i = 0; i < n; ++i) {
        nvmlProcessInfo_v2_t entry{}; // the first 24 bytes are the same in both layouts
        std::memcpy(&entry, bytes + i * stride, sizeof entry);
        list.entries.push_back({entry.pid, process_memory(entry.usedGpuMemory)});
    }
    return list;
}

template <typename Entry, typename Call> ProcessList read_plain(Call call, nvmlDevice_t device) {
    std::vector<Entry> storage;
    auto fetch = [&](unsigned capacity, unsigned& count) {
        if (capacity == 0) {
            return call(device, &count, nullptr);
        }
        storage.assign(capacity, Entry{});
        return call(device, &count, storage.data());
    };
    ProcessList list;
    unsigned count = 0;
    list.rc = size_query(fetch, count);
    if (list.rc != NVML_SUCCESS) {
        return list;
    }
    for (std::size_t i = 0; i < count; ++i) {
        list.entries.push_back({storage[i].pid, process_memory(storage[i].usedGpuMemory)});
    }
    return list;
}

// Newest ABI first; an older one is tried when the newer is absent or refuses.
ProcessList read_process_list(const ProcessApi& api, nvmlDevice_t device) {
    ProcessList list;
    if (api.v3 != nullptr) {
        list = read_v3(api.v3, device);
        if (!try_older_abi(list.rc)) {
            return list;
        }
    }
    if (api.v2 != nullptr) {
        list = read_plain<nvmlProcessInfo_v2_t>(api.v2, device);
        if (!try_older_abi(list.rc)) {
            return list;
        }
    }
    if (api.v1 != nullptr) {
        list = read_plain<nvmlProcessInfo_v1_t>(api.v1, device);
    }
    return list;
}

} // namespace

DeviceProcesses read_device_processes(const Api& api, nvmlDevice_t device) {
    const ProcessList compute = read_process_list(api.compute, device);
    if (compute.rc != NVML_SUCCESS) {
        return {std::nullopt, compute.rc}; // without the compute list the picture would mislead
    }
    std::map<unsigned, gpu::Process> merged;
    merge_processes(merged, compute.entries, gpu::Process::Kind::compute);
    if (api.graphics.any()) {
        // A failed graphics list is ignored unless the GPU itself is gone.
        const ProcessList graphics = read_process_list(api.graphics, device);
        if (graphics.rc == NVML_SUCCESS) {
            merge_processes(merged, graphics.entries, gpu::Process::Kind::graphics);
        } else if (unusable_gpu(graphics.rc)) {
            return {std::nullopt, graphics.rc};
        }
    }
    std::vector<gpu::Process> processes;
    processes.reserve(merged.size());
    for (auto& [pid, process] : merged) {
        processes.push_back(std::move(process));
    }
    return {std::move(processes), NVML_SUCCESS};
}

} // namespace withgpu::nvml
