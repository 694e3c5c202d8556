#include "nvml/snapshot_reader.hpp"

#include "nvml/processes.hpp"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace withgpu::nvml {

namespace {

// A NUL-terminated string from a fixed buffer that the driver might not have terminated.
template <std::size_t N> std::string from_buffer(const std::array<char, N>& buffer) {
    return std::string(buffer.data(), ::strnlen(buffer.data(), buffer.size()));
}

// Reads one GPU as far as it can be read. Every call's failure other than a lost GPU only
// leaves that metric unknown.
class GpuReader {
  public:
    GpuReader(const Api& api, unsigned index, const gpu::Figures& figures)
        : m_api(api), m_figures(figures) {
        m_gpu.index = index;
    }

    gpu::GpuSnapshot read() && {
        nvmlDevice_t device = nullptr;
        const nvmlReturn_t rc = m_api.handle_by_index(m_gpu.index, &device);
        if (rc != NVML_SUCCESS || device == nullptr) {
            m_gpu.error = open_error(rc);
            return std::move(m_gpu);
        }
        if (read_identity(device) && read_memory(device) && read_gauges(device)) {
            read_processes(device);
        }
        return std::move(m_gpu);
    }

  private:
    std::string open_error(nvmlReturn_t rc) const {
        if (auto unusable = unusable_gpu(rc)) {
            return *unusable;
        }
        if (rc == NVML_ERROR_NO_PERMISSION) {
            return "no permission to open this GPU";
        }
        if (rc == NVML_SUCCESS) {
            return "NVML returned no handle for this GPU";
        }
        return fmt::format("cannot open this GPU: {}", error_text(m_api, rc));
    }

    // False (with `error` set) when the GPU turned out to be unusable.
    bool usable(nvmlReturn_t rc) {
        if (auto unusable = unusable_gpu(rc)) {
            m_gpu.error = std::move(unusable);
            return false;
        }
        return true;
    }

    bool read_identity(nvmlDevice_t device) {
        std::array<char, NVML_DEVICE_NAME_V2_BUFFER_SIZE> name{};
        nvmlReturn_t rc = m_api.name(device, name.data(), static_cast<unsigned>(name.size()));
        if (rc == NVML_SUCCESS) {
            m_gpu.name = from_buffer(name);
        } else if (!usable(rc)) {
            return false;
        }

        nvmlPciInfo_t pci{};
        rc = m_api.pci_info(device, &pci);
        if (rc == NVML_SUCCESS) {
            m_gpu.pci_bus_id = from_buffer(std::to_array(pci.busId));
        } else if (!usable(rc)) {
            return false;
        }

        // Claims are keyed by UUID, so a GPU without one cannot be used at all.
        std::array<char, NVML_DEVICE_UUID_V2_BUFFER_SIZE> uuid{};
        rc = m_api.uuid(device, uuid.data(), static_cast<unsigned>(uuid.size()));
        if (rc != NVML_SUCCESS) {
            m_gpu.error = unusable_gpu(rc).value_or(
                fmt::format("cannot read the GPU's UUID: {}", error_text(m_api, rc)));
            return false;
        }
        m_gpu.uuid = from_buffer(uuid);
        return !m_figures.placement || read_placement(device);
    }

    // Minor number and local CPUs: unknown when not supported.
    bool read_placement(nvmlDevice_t device) {
        if (m_api.minor_number != nullptr) {
            unsigned minor = 0;
            const nvmlReturn_t rc = m_api.minor_number(device, &minor);
            if (rc == NVML_SUCCESS) {
                m_gpu.minor_number = minor;
            } else if (!usable(rc)) {
                return false;
            }
        }
        if (m_api.cpu_affinity != nullptr) {
            constexpr unsigned words = 64; // 4096 CPUs
            constexpr unsigned bits = sizeof(unsigned long) * 8;
            std::array<unsigned long, words> set{};
            const nvmlReturn_t rc = m_api.cpu_affinity(device, words, set.data());
            if (rc == NVML_SUCCESS) {
                std::vector<unsigned> cpus;
                for (unsigned w = 0; w < words; ++w) {
                    for (unsigned b = 0; b < bits; ++b) {
                        if ((set[w] >> b) & 1UL) {
                            cpus.push_back(w * bits + b);
                        }
                    }
                }
                m_gpu.local_cpus = std::move(cpus);
            } else if (!usable(rc)) {
                return false;
            }
        }
        return true;
    }

    bool read_memory(nvmlDevice_t device) {
        nvmlReturn_t rc = NVML_ERROR_FUNCTION_NOT_FOUND;
        if (m_api.memory_v2 != nullptr) {
            // The version field is the struct version constant (size | 2 << 24), not plain 2.
            nvmlMemory_v2_t memory{};
            memory.version = nvmlMemory_v2;
            rc = m_api.memory_v2(device, &memory);
            if (rc == NVML_SUCCESS) {
                set_memory(memory.total, memory.used, memory.free);
                if (m_gpu.memory_total_bytes && memory.reserved <= memory.total) {
                    m_gpu.memory_reserved_bytes = memory.reserved;
                }
                return true;
            }
            if (!try_older_abi(rc)) {
                return usable(rc);
            }
        }
        if (m_api.memory_v1 != nullptr) {
            // v1 counts the driver's reserved memory as used.
            nvmlMemory_t memory{};
            rc = m_api.memory_v1(device, &memory);
            if (rc == NVML_SUCCESS) {
                set_memory(memory.total, memory.used, memory.free);
                return true;
            }
        }
        return usable(rc);
    }

    void set_memory(unsigned long long total, unsigned long long used, unsigned long long free) {
        if (total == 0) {
            return; // unified-memory parts report 0: the figures mean nothing
        }
        m_gpu.memory_total_bytes = total;
        m_gpu.memory_used_bytes = used;
        m_gpu.memory_free_bytes = free;
    }

    bool read_gauges(nvmlDevice_t device) {
        if (m_figures.utilization && m_api.utilization != nullptr) {
            nvmlUtilization_t utilization{};
            const nvmlReturn_t rc = m_api.utilization(device, &utilization);
            if (rc == NVML_SUCCESS) {
                m_gpu.utilization_percent = utilization.gpu;
            } else if (!usable(rc)) {
                return false;
            }
        }
        if (m_figures.temperature && m_api.temperature != nullptr) {
            unsigned celsius = 0;
            const nvmlReturn_t rc = m_api.temperature(device, NVML_TEMPERATURE_GPU, &celsius);
            if (rc == NVML_SUCCESS) {
                m_gpu.temperature_c = celsius;
            } else if (!usable(rc)) {
                return false;
            }
        }
        return !m_figures.power || (read_watts(m_api.power, device, m_gpu.power_w) &&
                                    read_watts(m_api.power_limit, device, m_gpu.power_limit_w));
    }

    bool read_watts(decltype(&::nvmlDeviceGetPowerUsage) call,
                    nvmlDevice_t device,
                    std::optional<double>& watts) {
        if (call == nullptr) {
            return true;
        }
        unsigned milliwatts = 0;
        const nvmlReturn_t rc = call(device, &milliwatts);
        if (rc == NVML_SUCCESS) {
            watts = static_cast<double>(milliwatts) / 1000.0;
            return true;
        }
        return usable(rc);
    }

    void read_processes(nvmlDevice_t device) {
        DeviceProcesses found = read_device_processes(m_api, device);
        if (!found.processes) {
            usable(found.failure);
            return;
        }
        m_gpu.processes = std::move(found.processes);
    }

    const Api& m_api;
    const gpu::Figures& m_figures;
    gpu::GpuSnapshot m_gpu;
};

} // namespace

Result<gpu::MachineSnapshot> read_snapshot(const Library& library, const gpu::Figures& figures) {
    const Api& api = library.api();
    gpu::MachineSnapshot machine;
    machine.figures = figures;

    if (api.driver_version != nullptr) {
        std::array<char, NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE> version{};
        if (api.driver_version(version.data(), static_cast<unsigned>(version.size())) ==
            NVML_SUCCESS) {
            machine.driver_version = from_buffer(version);
        }
    }

    unsigned count = 0;
    const nvmlReturn_t rc = api.device_count(&count);
    if (rc != NVML_SUCCESS) {
        return fail(ErrorKind::driver,
                    fmt::format("NVML could not count the GPUs: {} ({} in {})",
                                error_text(api, rc),
                                api.device_count_name,
                                library.name()),
                    "Check that `nvidia-smi` lists the GPUs.");
    }
    for (unsigned index = 0; index < count; ++index) {
        machine.gpus.push_back(GpuReader(api, index, figures).read());
    }
    return machine;
}

} // namespace withgpu::nvml
