// Inside src/cuda (and its tests) only: the loaded library's entry points and the RAII pieces
// that Driver and Hold share (a retained primary context, the thread's current context).
#pragma once

#include "cuda/abi.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace withgpu::cuda::detail {

// The entry points in use, each typed after its declaration in abi.hpp. The optional ones
// may be null.
struct Api {
    decltype(&::cuInit) init = nullptr;
    decltype(&::cuDeviceGetByPCIBusId) device_by_bus_id = nullptr;
    decltype(&::cuDevicePrimaryCtxRetain) retain = nullptr;
    decltype(&::cuDevicePrimaryCtxRelease_v2) release = nullptr;
    decltype(&::cuCtxSetCurrent) set_current = nullptr;
    decltype(&::cuCtxGetCurrent) get_current = nullptr;
    decltype(&::cuMemGetInfo_v2) memory_info = nullptr;
    decltype(&::cuMemAlloc_v2) allocate = nullptr;
    decltype(&::cuMemFree_v2) free = nullptr;
    // Optional.
    decltype(&::cuDriverGetVersion) driver_version = nullptr;
    decltype(&::cuDeviceGetCount) device_count = nullptr;
    decltype(&::cuDeviceGetPCIBusId) bus_id_of = nullptr;
    decltype(&::cuGetErrorString) error_string = nullptr;
    decltype(&::cuGetErrorName) error_name = nullptr;
};

// Fills `api` from the library `handle`; returns the names of the required entry points that
// are missing.
[[nodiscard]] std::vector<std::string> resolve_api(void* handle, Api& api);

// A loaded and initialised driver. Shared by the Driver and every Hold made from it, so that
// the library outlives the last hold.
struct Library {
    std::string name; // as given to dlopen, for messages
    std::shared_ptr<void> handle;
    Api api;
    std::optional<int> version;
};

// "out of memory (CUDA_ERROR_OUT_OF_MEMORY)", or "CUDA error 2" without the string calls.
[[nodiscard]] std::string error_text(const Api& api, CUresult rc);

// "<call> failed on GPU <bus id>: <error_text>", ErrorKind::failed.
[[nodiscard]] Error
call_error(const Library& library, const char* call, std::string_view bus_id, CUresult rc);

// The device with this (normalised) bus id, checked back with cuDeviceGetPCIBusId where the
// driver has it, comparing numbers.
[[nodiscard]] Result<CUdevice> find_device(const Library& library, const std::string& bus_id);

// One retain of a device's primary context, released on destruction. Move-only.
class PrimaryContext {
  public:
    PrimaryContext() = default;
    [[nodiscard]] static Result<PrimaryContext>
    retain(const Library& library, CUdevice device, const std::string& bus_id);
    PrimaryContext(PrimaryContext&& other) noexcept;
    PrimaryContext& operator=(PrimaryContext&& other) noexcept;
    PrimaryContext(const PrimaryContext&) = delete;
    PrimaryContext& operator=(const PrimaryContext&) = delete;
    ~PrimaryContext() { reset(); }

    [[nodiscard]] CUcontext get() const noexcept { return m_context; }
    void reset() noexcept;

  private:
    const Library* m_library = nullptr;
    CUdevice m_device = 0;
    CUcontext m_context = nullptr;
};

// Makes a context current on this thread for the guard's lifetime, then restores whichever
// was current before, so that a hold never changes its caller's CUDA state.
class CurrentContext {
  public:
    [[nodiscard]] static Result<CurrentContext>
    make(const Library& library, CUcontext context, const std::string& bus_id);
    CurrentContext(CurrentContext&& other) noexcept;
    CurrentContext& operator=(CurrentContext&&) = delete;
    CurrentContext(const CurrentContext&) = delete;
    CurrentContext& operator=(const CurrentContext&) = delete;
    ~CurrentContext();

  private:
    CurrentContext(const Library& library, CUcontext previous)
        : m_library(&library), m_previous(previous) {}
    const Library* m_library = nullptr;
    CUcontext m_previous = nullptr;
};

// cuMemGetInfo_v2 for the context current on this thread.
[[nodiscard]] Result<std::pair<std::uint64_t, std::uint64_t>>
free_and_total(const Library& library, const std::string& bus_id);

} // namespace withgpu::cuda::detail
