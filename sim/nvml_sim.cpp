// The entry points of the simulated libnvidia-ml.so.1. Each behaves like the
// real driver's for the machine described by $WITH_GPU_SIM_MACHINE (see
// docs/simulator.md); the machine file is re-read whenever it changes.
#include "cuda_state.hpp"
#include "entry_guard.hpp"
#include "machine.hpp"
#include "machine_file.hpp"
#include "nvml/abi.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

// nvml.h leaves the handle type opaque; ours point into a fixed array owned by
// the driver state, so they are never null and survive reloads of the machine.
struct nvmlDevice_st {
    unsigned int index;
};

namespace withgpu::sim {
namespace {

// The simulated driver's own state: refcount, loaded machine, handles. One
// instance per loaded library (a function-local static, like a driver's globals).
class Driver {
  public:
    Driver() noexcept {
        for (unsigned int i = 0; i < m_handles.size(); ++i) {
            m_handles[i].index = i;
        }
    }

    nvmlReturn_t init() {
        const std::lock_guard lock(m_mutex);
        auto attempt = m_file.load();
        if (attempt.unset) {
            return NVML_ERROR_DRIVER_NOT_LOADED; // like a machine without the kernel module
        }
        if (!attempt.machine) {
            return NVML_ERROR_UNKNOWN;
        }
        if (attempt.machine->init_error != NVML_SUCCESS) {
            return attempt.machine->init_error;
        }
        m_file.commit(std::move(*attempt.machine));
        ++m_refcount;
        return NVML_SUCCESS;
    }

    nvmlReturn_t shutdown() {
        const std::lock_guard lock(m_mutex);
        if (m_refcount == 0) {
            return NVML_ERROR_UNINITIALIZED;
        }
        if (--m_refcount == 0) {
            m_file.clear();
        }
        return NVML_SUCCESS;
    }

    // A call that takes no device: init check, reload, machine-wide fault, then body(machine).
    template <typename Body> nvmlReturn_t system_call(std::string_view function, Body&& body) {
        return locked([&](const Machine& machine) -> nvmlReturn_t {
            if (const int code = fault_for(machine.faults, function); code != NVML_SUCCESS) {
                return code;
            }
            return body(machine);
        });
    }

    nvmlReturn_t
    handle_by_index(std::string_view function, unsigned int index, nvmlDevice_t* device) {
        return locked([&](const Machine& machine) -> nvmlReturn_t {
            if (index >= machine.gpus.size()) {
                return NVML_ERROR_INVALID_ARGUMENT;
            }
            // A lost GPU still has a handle; only the calls made on it fail.
            if (const int code = fault_for(machine.gpus[index].faults, function);
                code != NVML_SUCCESS) {
                return code;
            }
            if (device == nullptr) {
                return NVML_ERROR_INVALID_ARGUMENT;
            }
            *device = &m_handles[index];
            return NVML_SUCCESS;
        });
    }

    // A call on a device: init check, reload, handle check, fault, lost, then body(gpu). With
    // `with_cuda`, the GPU's processes include the CUDA simulator's (docs/simulator.md).
    template <typename Body>
    nvmlReturn_t device_call(std::string_view function,
                             nvmlDevice_t device,
                             Body&& body,
                             bool with_cuda = false) {
        return locked([&](const Machine& machine) -> nvmlReturn_t {
            const auto index = index_of(device);
            if (!index || *index >= machine.gpus.size()) {
                return NVML_ERROR_INVALID_ARGUMENT;
            }
            const SimGpu& gpu = machine.gpus[*index];
            if (const int code = fault_for(gpu.faults, function); code != NVML_SUCCESS) {
                return code;
            }
            if (gpu.lost) {
                return NVML_ERROR_GPU_IS_LOST;
            }
            if (!with_cuda) {
                return body(gpu);
            }
            const auto usage = read_cuda_usage(state_dir(m_file.path()), 0, "nvml-sim");
            return body(with_cuda_usage(gpu, usage));
        });
    }

  private:
    template <typename Body> nvmlReturn_t locked(Body&& body) {
        const std::lock_guard lock(m_mutex);
        if (m_refcount == 0) {
            return NVML_ERROR_UNINITIALIZED;
        }
        m_file.refresh();
        const Machine* machine = m_file.machine();
        if (machine == nullptr) {
            return NVML_ERROR_UNKNOWN; // the current file is malformed (reported once)
        }
        return body(*machine);
    }

    [[nodiscard]] std::optional<unsigned int> index_of(nvmlDevice_t device) const {
        for (const auto& handle : m_handles) {
            if (&handle == device) {
                return handle.index;
            }
        }
        return std::nullopt;
    }

    std::mutex m_mutex;
    unsigned int m_refcount = 0;
    MachineFile m_file{"nvml-sim"};
    std::array<nvmlDevice_st, max_gpus> m_handles{};
};

Driver& driver() {
    static Driver instance;
    return instance;
}

// With $WITH_GPU_SIM_CALL_LOG set, every entry point called appends its name and a newline to
// that file (for counting a program's NVML calls: bench/floor_bench.py). Read at every call,
// like the machine file; one open/write/close each, so it costs nothing when unset.
void log_call(const char* function) noexcept {
    const char* path = std::getenv("WITH_GPU_SIM_CALL_LOG");
    if (path == nullptr || *path == '\0') {
        return;
    }
    const int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        return;
    }
    std::array<char, 128> line{};
    const auto length = std::min(std::strlen(function), line.size() - 1);
    std::memcpy(line.data(), function, length);
    line[length] = '\n';
    static_cast<void>(::write(fd, line.data(), length + 1)); // one write: O_APPEND keeps it whole
    ::close(fd);
}

template <typename Body> nvmlReturn_t guarded(const char* function, Body&& body) noexcept {
    log_call(function);
    return run_guarded("nvml-sim", function, NVML_ERROR_UNKNOWN, body);
}

template <typename Body>
nvmlReturn_t device_entry(const char* function, nvmlDevice_t device, Body&& body) noexcept {
    return guarded(function, [&] { return driver().device_call(function, device, body); });
}

// A device call whose answer counts the CUDA simulator's processes: memory and process lists.
template <typename Body>
nvmlReturn_t usage_entry(const char* function, nvmlDevice_t device, Body&& body) noexcept {
    return guarded(function, [&] { return driver().device_call(function, device, body, true); });
}

template <typename Body> nvmlReturn_t system_entry(const char* function, Body&& body) noexcept {
    return guarded(function, [&] { return driver().system_call(function, body); });
}

nvmlReturn_t copy_text(std::string_view text, char* buffer, unsigned int length) {
    if (buffer == nullptr) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    if (length <= text.size()) {
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    std::memcpy(buffer, text.data(), text.size());
    buffer[text.size()] = '\0';
    return NVML_SUCCESS;
}

nvmlReturn_t fill_pci_info(const SimGpu& gpu, nvmlPciInfo_t* pci) {
    if (pci == nullptr) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    *pci = nvmlPciInfo_t{};
    pci->domain = gpu.pci_domain;
    pci->bus = gpu.pci_bus;
    pci->device = gpu.pci_device;
    pci->pciDeviceId = (gpu.pci_device_id << 16U) | 0x10DEU;
    pci->pciSubSystemId = 0;
    std::snprintf(pci->busId,
                  sizeof(pci->busId),
                  "%08X:%02X:%02X.0",
                  gpu.pci_domain,
                  gpu.pci_bus & 0xFFU,
                  gpu.pci_device & 0x1FU);
    std::snprintf(pci->busIdLegacy,
                  sizeof(pci->busIdLegacy),
                  "%04X:%02X:%02X.0",
                  gpu.pci_domain & 0xFFFFU,
                  gpu.pci_bus & 0xFFU,
                  gpu.pci_device & 0x1FU);
    return NVML_SUCCESS;
}

enum class ProcessList { compute, graphics };

// Writes the processes of one list with `stride` bytes per entry: 16 (v1
// struct), 24 (v2) or 32 (the wide layout some R535 drivers wrote from _v3).
// Follows NVML's size-query protocol.
// How many process list calls of this kind this process made on `gpu` before this one.
unsigned long long earlier_calls(const SimGpu& gpu, ProcessList list) {
    static std::mutex mutex;
    static std::map<std::pair<std::string, int>, unsigned long long> calls;
    const std::lock_guard<std::mutex> lock(mutex);
    return calls[{gpu.uuid, static_cast<int>(list)}]++;
}

nvmlReturn_t write_processes(
    const SimGpu& gpu, ProcessList list, unsigned int* count, void* infos, unsigned int stride) {
    if (count == nullptr) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    const unsigned long long before = earlier_calls(gpu, list);
    std::vector<const SimProcess*> selected;
    for (const auto& process : gpu.processes) {
        if (process.listed_after_calls > before) {
            continue; // not there yet
        }
        const bool wanted =
            process.type == ProcessType::both ||
            (list == ProcessList::compute) == (process.type == ProcessType::compute);
        if (wanted) {
            selected.push_back(&process);
        }
    }
    const auto needed = static_cast<unsigned int>(selected.size());
    if (*count < needed) {
        *count = needed;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    *count = needed;
    if (needed == 0) {
        return NVML_SUCCESS;
    }
    if (infos == nullptr) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    auto* out = static_cast<unsigned char*>(infos);
    for (std::size_t i = 0; i < selected.size(); ++i) {
        nvmlProcessInfo_v3_wide_t entry{};
        entry.pid = selected[i]->pid;
        entry.usedGpuMemory = selected[i]->used_memory_mib
                                  ? *selected[i]->used_memory_mib * 1024ULL * 1024ULL
                                  : NVML_VALUE_NOT_AVAILABLE_ULL;
        entry.gpuInstanceId = 0xFFFFFFFFU; // not a MIG device
        entry.computeInstanceId = 0xFFFFFFFFU;
        entry.usedGpuCcProtectedMemory = 0;
        unsigned char* slot = out + i * stride;
        if (stride == sizeof(nvmlProcessInfo_v1_t)) {
            const nvmlProcessInfo_v1_t v1{entry.pid, entry.usedGpuMemory};
            std::memcpy(slot, &v1, sizeof v1);
        } else if (stride == sizeof(nvmlProcessInfo_v2_t)) {
            const nvmlProcessInfo_v2_t v2{
                entry.pid, entry.usedGpuMemory, entry.gpuInstanceId, entry.computeInstanceId};
            std::memcpy(slot, &v2, sizeof v2);
        } else {
            std::memcpy(slot, &entry, sizeof entry);
        }
    }
    return NVML_SUCCESS;
}

template <typename Info>
nvmlReturn_t process_entry(const char* function,
                           nvmlDevice_t device,
                           ProcessList list,
                           unsigned int* count,
                           Info* infos,
                           bool honour_stride) noexcept {
    return usage_entry(function, device, [&](const SimGpu& gpu) -> nvmlReturn_t {
        const auto stride =
            honour_stride ? gpu.process_stride : static_cast<unsigned int>(sizeof(Info));
        return write_processes(gpu, list, count, infos, stride);
    });
}

} // namespace
} // namespace withgpu::sim

using withgpu::sim::Machine;
using withgpu::sim::ProcessList;
using withgpu::sim::SimGpu;

extern "C" {

nvmlReturn_t nvmlInit_v2(void) {
    return withgpu::sim::guarded(__func__, [] { return withgpu::sim::driver().init(); });
}

nvmlReturn_t nvmlInit(void) {
    return withgpu::sim::guarded(__func__, [] { return withgpu::sim::driver().init(); });
}

nvmlReturn_t nvmlShutdown(void) {
    return withgpu::sim::guarded(__func__, [] { return withgpu::sim::driver().shutdown(); });
}

const char* nvmlErrorString(nvmlReturn_t result) {
    withgpu::sim::log_call(__func__);
    return withgpu::sim::error_string(result);
}

nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
    return withgpu::sim::system_entry(__func__, [&](const Machine& machine) {
        return withgpu::sim::copy_text(machine.driver_version, version, length);
    });
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* deviceCount) {
    return withgpu::sim::system_entry(__func__, [&](const Machine& machine) -> nvmlReturn_t {
        if (deviceCount == nullptr) {
            return NVML_ERROR_INVALID_ARGUMENT;
        }
        *deviceCount = static_cast<unsigned int>(machine.gpus.size());
        return NVML_SUCCESS;
    });
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int* deviceCount) {
    return withgpu::sim::system_entry(__func__, [&](const Machine& machine) -> nvmlReturn_t {
        if (deviceCount == nullptr) {
            return NVML_ERROR_INVALID_ARGUMENT;
        }
        *deviceCount = static_cast<unsigned int>(machine.gpus.size());
        return NVML_SUCCESS;
    });
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
    const char* function = __func__;
    return withgpu::sim::guarded(
        function, [&] { return withgpu::sim::driver().handle_by_index(function, index, device); });
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t* device) {
    const char* function = __func__;
    return withgpu::sim::guarded(
        function, [&] { return withgpu::sim::driver().handle_by_index(function, index, device); });
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
    return withgpu::sim::device_entry(__func__, device, [&](const SimGpu& gpu) {
        return withgpu::sim::copy_text(gpu.name, name, length);
    });
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
    return withgpu::sim::device_entry(__func__, device, [&](const SimGpu& gpu) {
        return withgpu::sim::copy_text(gpu.uuid, uuid, length);
    });
}

nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int* minorNumber) {
    return withgpu::sim::device_entry(__func__, device, [&](const SimGpu& gpu) {
        if (minorNumber == nullptr) {
            return NVML_ERROR_INVALID_ARGUMENT;
        }
        *minorNumber = gpu.minor_number;
        return NVML_SUCCESS;
    });
}

nvmlReturn_t
nvmlDeviceGetCpuAffinity(nvmlDevice_t device, unsigned int cpuSetSize, unsigned long* cpuSet) {
    return withgpu::sim::device_entry(__func__, device, [&](const SimGpu& gpu) {
        if (cpuSet == nullptr || cpuSetSize == 0) {
            return NVML_ERROR_INVALID_ARGUMENT;
        }
        if (!gpu.cpu_affinity) {
            return NVML_ERROR_NOT_SUPPORTED;
        }
        constexpr unsigned int bits = sizeof(unsigned long) * 8;
        std::fill(cpuSet, cpuSet + cpuSetSize, 0UL);
        for (const unsigned int cpu : *gpu.cpu_affinity) {
            if (cpu / bits < cpuSetSize) { // like NVML: CPUs beyond the set are left out
                cpuSet[cpu / bits] |= 1UL << (cpu % bits);
            }
        }
        return NVML_SUCCESS;
    });
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t* pci) {
    return withgpu::sim::device_entry(
        __func__, device, [&](const SimGpu& gpu) { return withgpu::sim::fill_pci_info(gpu, pci); });
}

nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t* pci) {
    return withgpu::sim::device_entry(
        __func__, device, [&](const SimGpu& gpu) { return withgpu::sim::fill_pci_info(gpu, pci); });
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
    return withgpu::sim::usage_entry(__func__, device, [&](const SimGpu& gpu) -> nvmlReturn_t {
        if (memory == nullptr) {
            return NVML_ERROR_INVALID_ARGUMENT;
        }
        if (memory->version != nvmlMemory_v2) {
            return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        }
        const auto figures = withgpu::sim::memory_figures(gpu);
        memory->total = figures.total;
        memory->reserved = figures.reserved;
        memory->free = figures.free;
        memory->used = figures.used;
        return NVML_SUCCESS;
    });
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
    return withgpu::sim::usage_entry(__func__, device, [&](const SimGpu& gpu) -> nvmlReturn_t {
        if (memory == nullptr) {
            return NVML_ERROR_INVALID_ARGUMENT;
        }
        // The v1 call folds the driver's reservation into 'used'.
        const auto figures = withgpu::sim::memory_figures(gpu);
        memory->total = figures.total;
        memory->free = figures.free;
        memory->used = figures.used + figures.reserved;
        return NVML_SUCCESS;
    });
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t* utilization) {
    return withgpu::sim::device_entry(__func__, device, [&](const SimGpu& gpu) -> nvmlReturn_t {
        if (utilization == nullptr) {
            return NVML_ERROR_INVALID_ARGUMENT;
        }
        if (!gpu.utilization_percent || !gpu.memory_utilization_percent) {
            return NVML_ERROR_NOT_SUPPORTED;
        }
        utilization->gpu = *gpu.utilization_percent;
        utilization->memory = *gpu.memory_utilization_percent;
        return NVML_SUCCESS;
    });
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device,
                                      nvmlTemperatureSensors_t sensorType,
                                      unsigned int* temp) {
    return withgpu::sim::device_entry(__func__, device, [&](const SimGpu& gpu) -> nvmlReturn_t {
        if (temp == nullptr || sensorType != NVML_TEMPERATURE_GPU) {
            return NVML_ERROR_INVALID_ARGUMENT;
        }
        if (!gpu.temperature_c) {
            return NVML_ERROR_NOT_SUPPORTED;
        }
        *temp = *gpu.temperature_c;
        return NVML_SUCCESS;
    });
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int* power) {
    return withgpu::sim::device_entry(__func__, device, [&](const SimGpu& gpu) -> nvmlReturn_t {
        if (power == nullptr) {
            return NVML_ERROR_INVALID_ARGUMENT;
        }
        if (!gpu.power_mw) {
            return NVML_ERROR_NOT_SUPPORTED;
        }
        *power = *gpu.power_mw;
        return NVML_SUCCESS;
    });
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int* limit) {
    return withgpu::sim::device_entry(__func__, device, [&](const SimGpu& gpu) -> nvmlReturn_t {
        if (limit == nullptr) {
            return NVML_ERROR_INVALID_ARGUMENT;
        }
        if (!gpu.power_limit_mw) {
            return NVML_ERROR_NOT_SUPPORTED;
        }
        *limit = *gpu.power_limit_mw;
        return NVML_SUCCESS;
    });
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device,
                                                     unsigned int* infoCount,
                                                     nvmlProcessInfo_v2_t* infos) {
    return withgpu::sim::process_entry(
        __func__, device, ProcessList::compute, infoCount, infos, true);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device,
                                                     unsigned int* infoCount,
                                                     nvmlProcessInfo_v2_t* infos) {
    return withgpu::sim::process_entry(
        __func__, device, ProcessList::compute, infoCount, infos, false);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device,
                                                  unsigned int* infoCount,
                                                  nvmlProcessInfo_v1_t* infos) {
    return withgpu::sim::process_entry(
        __func__, device, ProcessList::compute, infoCount, infos, false);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device,
                                                      unsigned int* infoCount,
                                                      nvmlProcessInfo_v2_t* infos) {
    return withgpu::sim::process_entry(
        __func__, device, ProcessList::graphics, infoCount, infos, true);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t device,
                                                      unsigned int* infoCount,
                                                      nvmlProcessInfo_v2_t* infos) {
    return withgpu::sim::process_entry(
        __func__, device, ProcessList::graphics, infoCount, infos, false);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t device,
                                                   unsigned int* infoCount,
                                                   nvmlProcessInfo_v1_t* infos) {
    return withgpu::sim::process_entry(
        __func__, device, ProcessList::graphics, infoCount, infos, false);
}

} // extern "C"
