// Internal to nvml/: the loaded driver library. dlopen, symbol resolution with the ABI
// fallbacks, one nvmlInit session, and what NVML's result codes mean
// (docs/design/nvml.md, "Loading", "Sessions", "Symbols and fallbacks").
#pragma once

#include "nvml/abi.hpp"
#include "util/error.hpp"

#include <memory>
#include <optional>
#include <string>

namespace withgpu::nvml {

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
// Optional ones are nullptr when the library lacks them.
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

// Closes a dlopen handle.
struct DlClose {
    void operator()(void* handle) const noexcept;
};
using DlHandle = std::unique_ptr<void, DlClose>;

// Owns one successful nvmlInit: NVML counts them, so each needs its own nvmlShutdown.
class Session {
  public:
    Session() = default;
    explicit Session(decltype(&::nvmlShutdown) shutdown) : m_shutdown(shutdown) {}
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    Session(Session&& other) noexcept;
    Session& operator=(Session&& other) noexcept;
    ~Session() { end(); }

  private:
    void end() noexcept;
    decltype(&::nvmlShutdown) m_shutdown = nullptr;
};

// A loaded and initialised NVML: dlopen + symbol resolution + nvmlInit on open, nvmlShutdown
// + dlclose on destruction, in that order.
class Library {
  public:
    // `name` is a file name or path for dlopen. Errors (ErrorKind::driver) name the
    // library and dlerror()/nvmlErrorString, with a hint.
    [[nodiscard]] static Result<std::unique_ptr<Library>> open(const std::string& name);

    [[nodiscard]] const Api& api() const { return m_api; }
    [[nodiscard]] const std::string& name() const { return m_name; }
    // nvmlShutdown now; the library stays loaded (no call may be made) until destruction.
    void end_session() noexcept { m_session = Session(); }

  private:
    Library() = default;

    std::string m_name;
    DlHandle m_handle;
    Api m_api;
    Session m_session; // after `m_handle`, so nvmlShutdown runs before dlclose
};

// NVML's words for `rc` (nvmlErrorString), or "NVML error N" without them.
[[nodiscard]] std::string error_text(const Api& api, nvmlReturn_t rc);

// What a device call result after which the GPU cannot be read any further means ("GPU is
// lost"), or nullopt for any other result.
[[nodiscard]] std::optional<std::string> unusable_gpu(nvmlReturn_t rc);

// Results for which an older ABI generation of the same call is worth trying: the driver
// exports the newer symbol but refuses it.
[[nodiscard]] bool try_older_abi(nvmlReturn_t rc);

} // namespace withgpu::nvml
