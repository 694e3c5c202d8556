#include "nvml/library.hpp"

#include <fmt/format.h>

#include <dlfcn.h>
#include <utility>
#include <vector>

namespace withgpu::nvml {

namespace {

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

// Names what a usable library must have and does not.
class Missing {
  public:
    void require(bool found, const char* names) {
        if (!found) {
            m_names.emplace_back(names);
        }
    }
    [[nodiscard]] const std::vector<std::string>& names() const { return m_names; }

  private:
    std::vector<std::string> m_names;
};

// Session and device entry points without which nothing can be read.
void resolve_required(Resolver& r, Api& api, Missing& missing) {
    api.init_name = WITHGPU_NVML_RESOLVE(r, api.init, nvmlInit_v2);
    if (api.init_name == nullptr) {
        api.init_name = WITHGPU_NVML_RESOLVE(r, api.init, nvmlInit);
    }
    missing.require(api.init != nullptr, "nvmlInit_v2/nvmlInit");
    missing.require(WITHGPU_NVML_RESOLVE(r, api.shutdown, nvmlShutdown) != nullptr, "nvmlShutdown");

    api.device_count_name = WITHGPU_NVML_RESOLVE(r, api.device_count, nvmlDeviceGetCount_v2);
    if (api.device_count_name == nullptr) {
        api.device_count_name = WITHGPU_NVML_RESOLVE(r, api.device_count, nvmlDeviceGetCount);
    }
    missing.require(api.device_count != nullptr, "nvmlDeviceGetCount_v2/nvmlDeviceGetCount");

    WITHGPU_NVML_RESOLVE(r, api.handle_by_index, nvmlDeviceGetHandleByIndex_v2);
    WITHGPU_NVML_RESOLVE(r, api.handle_by_index, nvmlDeviceGetHandleByIndex);
    missing.require(api.handle_by_index != nullptr,
                    "nvmlDeviceGetHandleByIndex_v2/nvmlDeviceGetHandleByIndex");

    missing.require(WITHGPU_NVML_RESOLVE(r, api.name, nvmlDeviceGetName) != nullptr,
                    "nvmlDeviceGetName");
    missing.require(WITHGPU_NVML_RESOLVE(r, api.uuid, nvmlDeviceGetUUID) != nullptr,
                    "nvmlDeviceGetUUID");

    WITHGPU_NVML_RESOLVE(r, api.pci_info, nvmlDeviceGetPciInfo_v3);
    WITHGPU_NVML_RESOLVE(r, api.pci_info, nvmlDeviceGetPciInfo_v2);
    missing.require(api.pci_info != nullptr, "nvmlDeviceGetPciInfo_v3/nvmlDeviceGetPciInfo_v2");

    WITHGPU_NVML_RESOLVE(r, api.memory_v2, nvmlDeviceGetMemoryInfo_v2);
    WITHGPU_NVML_RESOLVE(r, api.memory_v1, nvmlDeviceGetMemoryInfo);
    missing.require(api.memory_v2 != nullptr || api.memory_v1 != nullptr,
                    "nvmlDeviceGetMemoryInfo_v2/nvmlDeviceGetMemoryInfo");
}

// The process lists, newest ABI first. Only the compute list is required: most compute GPUs
// have no graphics clients.
void resolve_process_lists(Resolver& r, Api& api, Missing& missing) {
    WITHGPU_NVML_RESOLVE(r, api.compute.v3, nvmlDeviceGetComputeRunningProcesses_v3);
    WITHGPU_NVML_RESOLVE(r, api.compute.v2, nvmlDeviceGetComputeRunningProcesses_v2);
    WITHGPU_NVML_RESOLVE(r, api.compute.v1, nvmlDeviceGetComputeRunningProcesses);
    missing.require(
        api.compute.any(),
        "nvmlDeviceGetComputeRunningProcesses_v3/_v2/nvmlDeviceGetComputeRunningProcesses");

    WITHGPU_NVML_RESOLVE(r, api.graphics.v3, nvmlDeviceGetGraphicsRunningProcesses_v3);
    WITHGPU_NVML_RESOLVE(r, api.graphics.v2, nvmlDeviceGetGraphicsRunningProcesses_v2);
    WITHGPU_NVML_RESOLVE(r, api.graphics.v1, nvmlDeviceGetGraphicsRunningProcesses);
}

// Optional: a missing metric is reported as unknown, missing words as "NVML error N".
void resolve_optional(Resolver& r, Api& api) {
    WITHGPU_NVML_RESOLVE(r, api.error_string, nvmlErrorString);
    WITHGPU_NVML_RESOLVE(r, api.driver_version, nvmlSystemGetDriverVersion);
    WITHGPU_NVML_RESOLVE(r, api.minor_number, nvmlDeviceGetMinorNumber);
    WITHGPU_NVML_RESOLVE(r, api.cpu_affinity, nvmlDeviceGetCpuAffinity);
    WITHGPU_NVML_RESOLVE(r, api.utilization, nvmlDeviceGetUtilizationRates);
    WITHGPU_NVML_RESOLVE(r, api.temperature, nvmlDeviceGetTemperature);
    WITHGPU_NVML_RESOLVE(r, api.power, nvmlDeviceGetPowerUsage);
    WITHGPU_NVML_RESOLVE(r, api.power_limit, nvmlDeviceGetEnforcedPowerLimit);
}

#undef WITHGPU_NVML_RESOLVE

// Resolves every entry point; returns the required ones that are missing.
std::vector<std::string> resolve_api(void* handle, Api& api) {
    Resolver r(handle);
    Missing missing;
    resolve_required(r, api, missing);
    resolve_process_lists(r, api, missing);
    resolve_optional(r, api);
    return missing.names();
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

} // namespace

void DlClose::operator()(void* handle) const noexcept {
    if (handle != nullptr) {
        ::dlclose(handle);
    }
}

Session::Session(Session&& other) noexcept : m_shutdown(std::exchange(other.m_shutdown, nullptr)) {}

Session& Session::operator=(Session&& other) noexcept {
    if (this != &other) {
        end();
        m_shutdown = std::exchange(other.m_shutdown, nullptr);
    }
    return *this;
}

void Session::end() noexcept {
    if (m_shutdown != nullptr) {
        std::exchange(m_shutdown, nullptr)();
    }
}

Result<std::unique_ptr<Library>> Library::open(const std::string& name) {
    ::dlerror();
    DlHandle handle(::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL));
    if (!handle) {
        const char* why = ::dlerror();
        return fail(
            ErrorKind::driver,
            fmt::format("cannot load NVML ({}): {}", name, why != nullptr ? why : "dlopen failed"),
            load_hint());
    }

    std::unique_ptr<Library> library(new Library());
    library->m_name = name;
    library->m_handle = std::move(handle);
    Api& api = library->m_api;
    if (const auto missing = resolve_api(library->m_handle.get(), api); !missing.empty()) {
        return fail(ErrorKind::driver,
                    fmt::format("{} is not a usable NVML library: it lacks {}",
                                name,
                                fmt::join(missing, ", ")),
                    "The NVIDIA driver may be too old, or the file is not NVIDIA's "
                    "libnvidia-ml.so.1. " +
                        load_hint());
    }

    const nvmlReturn_t rc = api.init();
    if (rc != NVML_SUCCESS) {
        return fail(ErrorKind::driver,
                    fmt::format("NVML could not be initialised: {} ({} in {})",
                                error_text(api, rc),
                                api.init_name,
                                name),
                    init_hint(rc));
    }
    library->m_session = Session(api.shutdown);
    return library;
}

std::string error_text(const Api& api, nvmlReturn_t rc) {
    if (api.error_string != nullptr) {
        const char* text = api.error_string(rc);
        if (text != nullptr && *text != '\0') {
            return text;
        }
    }
    return fmt::format("NVML error {}", rc);
}

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

bool try_older_abi(nvmlReturn_t rc) {
    return rc == NVML_ERROR_FUNCTION_NOT_FOUND || rc == NVML_ERROR_NOT_SUPPORTED ||
           rc == NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
}

} // namespace withgpu::nvml
