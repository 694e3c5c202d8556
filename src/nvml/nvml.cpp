// NVML loader and reader. See docs/design/nvml.md for the ABI choices (suffixed symbols,
// versioned structs, the process-entry stride guard).
#include "nvml/nvml.hpp"

#include "nvml/abi.hpp"
#include "nvml/process_merge.hpp"
#include "procfs/process_info.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <optional>
#include <utility>
#include <vector>

namespace withgpu::nvml {

namespace {

struct DlClose {
    void operator()(void* handle) const noexcept {
        if (handle != nullptr) {
            ::dlclose(handle);
        }
    }
};
using DlHandle = std::unique_ptr<void, DlClose>;

// One process-list entry point in its three ABI generations. The _v3 and _v2 symbols take
// 24-byte entries (per nvml.h), the unsuffixed one 16-byte entries.
struct ProcessApi {
    decltype(&::nvmlDeviceGetComputeRunningProcesses_v3) v3 = nullptr;
    decltype(&::nvmlDeviceGetComputeRunningProcesses_v2) v2 = nullptr;
    decltype(&::nvmlDeviceGetComputeRunningProcesses) v1 = nullptr;

    [[nodiscard]] bool any() const { return v3 != nullptr || v2 != nullptr || v1 != nullptr; }
};

// The entry points in use, each typed after its declaration in abi.hpp. Where a newer and an
// older symbol share a signature, one pointer holds whichever was found (newest first).
struct Api {
    decltype(&::nvmlInit_v2) init = nullptr;
    decltype(&::nvmlShutdown) shutdown = nullptr;
    decltype(&::nvmlErrorString) error_string = nullptr;
    decltype(&::nvmlSystemGetDriverVersion) driver_version = nullptr;
    decltype(&::nvmlDeviceGetCount_v2) device_count = nullptr;
    decltype(&::nvmlDeviceGetHandleByIndex_v2) handle_by_index = nullptr;
    decltype(&::nvmlDeviceGetName) name = nullptr;
    decltype(&::nvmlDeviceGetUUID) uuid = nullptr;
    decltype(&::nvmlDeviceGetPciInfo_v3) pci_info = nullptr;
    decltype(&::nvmlDeviceGetMinorNumber) minor_number = nullptr;
    decltype(&::nvmlDeviceGetCpuAffinity) cpu_affinity = nullptr;
    decltype(&::nvmlDeviceGetMemoryInfo_v2) memory_v2 = nullptr;
    decltype(&::nvmlDeviceGetMemoryInfo) memory_v1 = nullptr;
    decltype(&::nvmlDeviceGetUtilizationRates) utilization = nullptr;
    decltype(&::nvmlDeviceGetTemperature) temperature = nullptr;
    decltype(&::nvmlDeviceGetPowerUsage) power = nullptr;
    decltype(&::nvmlDeviceGetEnforcedPowerLimit) power_limit = nullptr;
    ProcessApi compute;
    ProcessApi graphics;

    // Names of the symbols actually resolved, for messages.
    const char* init_name = nullptr;
    const char* device_count_name = nullptr;
};

// Looks symbols up in one library. The explicit template argument at each call site (see
// WITHGPU_NVML_RESOLVE) makes the compiler check the destination against abi.hpp.
class Resolver {
  public:
    explicit Resolver(void* handle) : m_handle(handle) {}

    // Fills `out` from `symbol` unless a newer symbol already did; returns `symbol` when it
    // was the one used, nullptr otherwise.
    template <typename Fn> const char* resolve(Fn& out, const char* symbol) {
        if (out != nullptr) {
            return nullptr;
        }
        void* address = ::dlsym(m_handle, symbol);
        if (address == nullptr) {
            return nullptr;
        }
        out = reinterpret_cast<Fn>(address);
        return symbol;
    }

  private:
    void* m_handle;
};

// decltype(&::symbol) ties the pointer's type to the declaration in abi.hpp; a mismatch
// between `field` and `symbol` does not compile.
#define WITHGPU_NVML_RESOLVE(resolver, field, symbol)                                              \
    (resolver).resolve<decltype(&::symbol)>((field), #symbol)

// Resolves every entry point; returns the required ones that are missing.
std::vector<std::string> resolve_api(void* handle, Api& api) {
    Resolver r(handle);
    std::vector<std::string> missing;
    auto require = [&missing](bool found, const char* names) {
        if (!found) {
            missing.emplace_back(names);
        }
    };

    api.init_name = WITHGPU_NVML_RESOLVE(r, api.init, nvmlInit_v2);
    if (api.init_name == nullptr) {
        api.init_name = WITHGPU_NVML_RESOLVE(r, api.init, nvmlInit);
    }
    require(api.init != nullptr, "nvmlInit_v2/nvmlInit");
    require(WITHGPU_NVML_RESOLVE(r, api.shutdown, nvmlShutdown) != nullptr, "nvmlShutdown");
    WITHGPU_NVML_RESOLVE(r, api.error_string, nvmlErrorString);
    WITHGPU_NVML_RESOLVE(r, api.driver_version, nvmlSystemGetDriverVersion);

    api.device_count_name = WITHGPU_NVML_RESOLVE(r, api.device_count, nvmlDeviceGetCount_v2);
    if (api.device_count_name == nullptr) {
        api.device_count_name = WITHGPU_NVML_RESOLVE(r, api.device_count, nvmlDeviceGetCount);
    }
    require(api.device_count != nullptr, "nvmlDeviceGetCount_v2/nvmlDeviceGetCount");

    WITHGPU_NVML_RESOLVE(r, api.handle_by_index, nvmlDeviceGetHandleByIndex_v2);
    WITHGPU_NVML_RESOLVE(r, api.handle_by_index, nvmlDeviceGetHandleByIndex);
    require(api.handle_by_index != nullptr,
            "nvmlDeviceGetHandleByIndex_v2/nvmlDeviceGetHandleByIndex");

    require(WITHGPU_NVML_RESOLVE(r, api.name, nvmlDeviceGetName) != nullptr, "nvmlDeviceGetName");
    require(WITHGPU_NVML_RESOLVE(r, api.uuid, nvmlDeviceGetUUID) != nullptr, "nvmlDeviceGetUUID");

    WITHGPU_NVML_RESOLVE(r, api.pci_info, nvmlDeviceGetPciInfo_v3);
    WITHGPU_NVML_RESOLVE(r, api.pci_info, nvmlDeviceGetPciInfo_v2);
    require(api.pci_info != nullptr, "nvmlDeviceGetPciInfo_v3/nvmlDeviceGetPciInfo_v2");

    WITHGPU_NVML_RESOLVE(r, api.memory_v2, nvmlDeviceGetMemoryInfo_v2);
    WITHGPU_NVML_RESOLVE(r, api.memory_v1, nvmlDeviceGetMemoryInfo);
    require(api.memory_v2 != nullptr || api.memory_v1 != nullptr,
            "nvmlDeviceGetMemoryInfo_v2/nvmlDeviceGetMemoryInfo");

    // Optional: a missing metric is reported as unknown.
    WITHGPU_NVML_RESOLVE(r, api.minor_number, nvmlDeviceGetMinorNumber);
    WITHGPU_NVML_RESOLVE(r, api.cpu_affinity, nvmlDeviceGetCpuAffinity);
    WITHGPU_NVML_RESOLVE(r, api.utilization, nvmlDeviceGetUtilizationRates);
    WITHGPU_NVML_RESOLVE(r, api.temperature, nvmlDeviceGetTemperature);
    WITHGPU_NVML_RESOLVE(r, api.power, nvmlDeviceGetPowerUsage);
    WITHGPU_NVML_RESOLVE(r, api.power_limit, nvmlDeviceGetEnforcedPowerLimit);

    WITHGPU_NVML_RESOLVE(r, api.compute.v3, nvmlDeviceGetComputeRunningProcesses_v3);
    WITHGPU_NVML_RESOLVE(r, api.compute.v2, nvmlDeviceGetComputeRunningProcesses_v2);
    WITHGPU_NVML_RESOLVE(r, api.compute.v1, nvmlDeviceGetComputeRunningProcesses);
    require(api.compute.any(),
            "nvmlDeviceGetComputeRunningProcesses_v3/_v2/nvmlDeviceGetComputeRunningProcesses");

    WITHGPU_NVML_RESOLVE(r, api.graphics.v3, nvmlDeviceGetGraphicsRunningProcesses_v3);
    WITHGPU_NVML_RESOLVE(r, api.graphics.v2, nvmlDeviceGetGraphicsRunningProcesses_v2);
    WITHGPU_NVML_RESOLVE(r, api.graphics.v1, nvmlDeviceGetGraphicsRunningProcesses);
    return missing;
}

#undef WITHGPU_NVML_RESOLVE

// Owns one successful nvmlInit: NVML counts them, so each needs its own nvmlShutdown.
class Session {
  public:
    Session() = default;
    explicit Session(decltype(&::nvmlShutdown) shutdown) : m_shutdown(shutdown) {}
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    Session(Session&& other) noexcept : m_shutdown(std::exchange(other.m_shutdown, nullptr)) {}
    Session& operator=(Session&& other) noexcept {
        if (this != &other) {
            end();
            m_shutdown = std::exchange(other.m_shutdown, nullptr);
        }
        return *this;
    }
    ~Session() { end(); }

  private:
    void end() noexcept {
        if (m_shutdown != nullptr) {
            std::exchange(m_shutdown, nullptr)();
        }
    }
    decltype(&::nvmlShutdown) m_shutdown = nullptr;
};

std::string error_text(const Api& api, nvmlReturn_t rc) {
    if (api.error_string != nullptr) {
        const char* text = api.error_string(rc);
        if (text != nullptr && *text != '\0') {
            return text;
        }
    }
    return fmt::format("NVML error {}", rc);
}

// A NUL-terminated string from a fixed buffer that the driver might not have terminated.
template <std::size_t N> std::string from_buffer(const std::array<char, N>& buffer) {
    return std::string(buffer.data(), ::strnlen(buffer.data(), buffer.size()));
}

std::string load_hint() {
    return "with-gpu needs the NVIDIA driver's libnvidia-ml.so.1: install the NVIDIA driver, or "
           "name the library with --nvml-library PATH or WITH_GPU_NVML_LIBRARY. To try with-gpu "
           "without a GPU, use the NVML simulator (see docs/simulator.md).";
}

std::string init_hint(nvmlReturn_t rc) {
    switch (rc) {
    case NVML_ERROR_DRIVER_NOT_LOADED:
        return "The NVIDIA kernel driver is not running: check that `nvidia-smi` works (the "
               "nvidia module may need loading). Without a GPU, use the NVML simulator (see "
               "docs/simulator.md).";
    case NVML_ERROR_NO_PERMISSION:
        return "This user may not open the GPU device files (/dev/nvidia*): check their "
               "permissions, or the container's device access.";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH:
        return "The NVML library and the loaded kernel module come from different driver "
               "versions, typically after a driver upgrade: reboot or reload the nvidia module.";
    default:
        return "Check that `nvidia-smi` works on this machine.";
    }
}

// A device call result after which the GPU cannot be read any further.
std::optional<std::string> unusable_gpu(nvmlReturn_t rc) {
    switch (rc) {
    case NVML_ERROR_GPU_IS_LOST:
        return "GPU is lost";
    case NVML_ERROR_RESET_REQUIRED:
        return "GPU requires a reset";
    default:
        return std::nullopt;
    }
}

// Results for which an older ABI generation of the same call is worth trying.
bool try_older_abi(nvmlReturn_t rc) {
    return rc == NVML_ERROR_FUNCTION_NOT_FOUND || rc == NVML_ERROR_NOT_SUPPORTED ||
           rc == NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
}

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

// Reads one GPU as far as it can be read. Every call's failure other than a lost GPU only
// leaves that metric unknown.
class GpuReader {
  public:
    GpuReader(const Api& api, unsigned index) : m_api(api) { m_gpu.index = index; }

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
        return read_placement(device);
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
        if (m_api.utilization != nullptr) {
            nvmlUtilization_t utilization{};
            const nvmlReturn_t rc = m_api.utilization(device, &utilization);
            if (rc == NVML_SUCCESS) {
                m_gpu.utilization_percent = utilization.gpu;
            } else if (!usable(rc)) {
                return false;
            }
        }
        if (m_api.temperature != nullptr) {
            unsigned celsius = 0;
            const nvmlReturn_t rc = m_api.temperature(device, NVML_TEMPERATURE_GPU, &celsius);
            if (rc == NVML_SUCCESS) {
                m_gpu.temperature_c = celsius;
            } else if (!usable(rc)) {
                return false;
            }
        }
        return read_watts(m_api.power, device, m_gpu.power_w) &&
               read_watts(m_api.power_limit, device, m_gpu.power_limit_w);
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
        const ProcessList compute = read_process_list(m_api.compute, device);
        if (compute.rc != NVML_SUCCESS) {
            usable(compute.rc);
            return; // without the compute list the picture would be misleading
        }
        std::map<unsigned, gpu::Process> merged;
        merge_processes(merged, compute.entries, gpu::Process::Kind::compute);
        if (m_api.graphics.any()) {
            const ProcessList graphics = read_process_list(m_api.graphics, device);
            if (graphics.rc == NVML_SUCCESS) {
                merge_processes(merged, graphics.entries, gpu::Process::Kind::graphics);
            } else if (!usable(graphics.rc)) {
                return;
            }
        }
        std::vector<gpu::Process> processes;
        processes.reserve(merged.size());
        for (auto& [pid, process] : merged) {
            procfs::ProcessDetails details = procfs::read_process_details(static_cast<pid_t>(pid));
            process.user = std::move(details.user);
            process.command = std::move(details.command);
            processes.push_back(std::move(process));
        }
        m_gpu.processes = std::move(processes);
    }

    const Api& m_api;
    gpu::GpuSnapshot m_gpu;
};

} // namespace

struct Nvml::Impl {
    std::string library;
    DlHandle handle;
    Api api;
    Session session; // after `handle`, so nvmlShutdown runs before dlclose
};

Nvml::Nvml(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Nvml::Nvml(Nvml&&) noexcept = default;
Nvml& Nvml::operator=(Nvml&&) noexcept = default;
Nvml::~Nvml() = default;

Result<Nvml> Nvml::open(const std::string& library) {
    // Only the versioned name: the unversioned libnvidia-ml.so may be the CUDA toolkit's stub.
    const std::string name = library.empty() ? std::string(default_library) : library;
    ::dlerror();
    DlHandle handle(::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL));
    if (!handle) {
        const char* why = ::dlerror();
        return fail(
            ErrorKind::environment,
            fmt::format("cannot load NVML ({}): {}", name, why != nullptr ? why : "dlopen failed"),
            load_hint());
    }

    auto impl = std::make_unique<Impl>();
    impl->library = name;
    impl->handle = std::move(handle);
    if (const auto missing = resolve_api(impl->handle.get(), impl->api); !missing.empty()) {
        return fail(ErrorKind::environment,
                    fmt::format("{} is not a usable NVML library: it lacks {}",
                                name,
                                fmt::join(missing, ", ")),
                    "The NVIDIA driver may be too old, or the file is not NVIDIA's "
                    "libnvidia-ml.so.1. " +
                        load_hint());
    }

    const nvmlReturn_t rc = impl->api.init();
    if (rc != NVML_SUCCESS) {
        return fail(ErrorKind::environment,
                    fmt::format("NVML could not be initialised: {} ({} in {})",
                                error_text(impl->api, rc),
                                impl->api.init_name,
                                name),
                    init_hint(rc));
    }
    impl->session = Session(impl->api.shutdown);
    return Nvml(std::move(impl));
}

Result<gpu::MachineSnapshot> Nvml::snapshot() const {
    const Api& api = m_impl->api;
    gpu::MachineSnapshot machine;

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
        return fail(ErrorKind::environment,
                    fmt::format("NVML could not count the GPUs: {} ({} in {})",
                                error_text(api, rc),
                                api.device_count_name,
                                m_impl->library),
                    "Check that `nvidia-smi` lists the GPUs.");
    }
    for (unsigned index = 0; index < count; ++index) {
        machine.gpus.push_back(GpuReader(api, index).read());
    }
    return machine;
}

const std::string& Nvml::library() const {
    return m_impl->library;
}

} // namespace withgpu::nvml
