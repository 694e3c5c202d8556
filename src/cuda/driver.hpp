// The CUDA driver API (libcuda.so.1), loaded with dlopen at run time so that with-gpu runs
// without it: only to hold memory on a claimed GPU (hold.hpp). Our own ABI declarations are
// in abi.hpp; docs/design/nvml.md explains the same approach for NVML.
#pragma once

#include "util/error.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace withgpu::cuda {

namespace detail {
struct Library;
}

// The library dlopen'ed when no explicit path is given: found through the normal loader
// search, so LD_LIBRARY_PATH works (and selects the simulator in tests). Never the
// unversioned libcuda.so, which may be the CUDA toolkit's stub.
inline constexpr const char* default_library = "libcuda.so.1";

// NVML's "00000000:07:00.0" (or any form cuDeviceGetByPCIBusId takes, hex, domain of up to 8
// digits) as "0000:07:00.0": the form the driver is known to accept. ErrorKind::usage when it
// is not a PCI bus id.
[[nodiscard]] Result<std::string> normalise_pci_bus_id(std::string_view bus_id);

struct MemoryInfo {
    std::uint64_t free_bytes = 0;  // what a new allocation could have now
    std::uint64_t total_bytes = 0; // what contexts can have at all
};

// A loaded and initialised CUDA driver (dlopen + cuInit). Cheap to copy: copies share the
// library, and so does every Hold made from it. The library stays loaded for the rest of
// the process once cuInit has run (the driver's own threads outlive any dlclose).
//
// CUDA enumerates only the GPUs that CUDA_VISIBLE_DEVICES names, read once at cuInit, so a
// process that holds GPUs by bus id must have it unset when it opens the driver (the
// caller's job: changing the environment is not thread-safe).
class Driver {
  public:
    // `library` is a file name or path for dlopen; empty means default_library.
    // Errors (ErrorKind::failed) name the library and dlerror() or cuGetErrorString,
    // with a hint; a caller that holds memory as an extra turns them into a warning.
    [[nodiscard]] static Result<Driver> open(const std::string& library = {});

    // The path or name that was loaded, for messages.
    [[nodiscard]] const std::string& library() const;
    // cuDriverGetVersion: 1000 * major + 10 * minor (12040 is CUDA 12.4); nullopt when the
    // library does not say.
    [[nodiscard]] std::optional<int> version() const;
    // cuDeviceGetCount.
    [[nodiscard]] Result<int> device_count() const;

    // Free and total memory of the GPU with this PCI bus id, as cuMemGetInfo_v2 reports it
    // inside the GPU's primary context. The context is retained only for the call: unless
    // something else in this process holds it, the free figure is lower by what the context
    // itself takes, which is freed again afterwards.
    [[nodiscard]] Result<MemoryInfo> memory_info(std::string_view pci_bus_id) const;

  private:
    friend class Hold;
    explicit Driver(std::shared_ptr<const detail::Library> library);
    std::shared_ptr<const detail::Library> m_library;
};

} // namespace withgpu::cuda
