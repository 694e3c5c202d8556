#include "cuda/library.hpp"

#include "cuda/driver.hpp"

#include <fmt/format.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

namespace withgpu::cuda::detail {

// decltype(&::symbol) ties the pointer's type to the declaration in abi.hpp.
#define WITHGPU_CUDA_RESOLVE(handle, field, symbol)                                                \
    ((field) = reinterpret_cast<decltype(&::symbol)>(::dlsym((handle), #symbol)),                  \
     (field) != nullptr ? nullptr : #symbol)

std::vector<std::string> resolve_api(void* handle, Api& api) {
    std::vector<std::string> missing;
    for (const char* absent : {
             WITHGPU_CUDA_RESOLVE(handle, api.init, cuInit),
             WITHGPU_CUDA_RESOLVE(handle, api.device_by_bus_id, cuDeviceGetByPCIBusId),
             WITHGPU_CUDA_RESOLVE(handle, api.retain, cuDevicePrimaryCtxRetain),
             WITHGPU_CUDA_RESOLVE(handle, api.release, cuDevicePrimaryCtxRelease_v2),
             WITHGPU_CUDA_RESOLVE(handle, api.set_current, cuCtxSetCurrent),
             WITHGPU_CUDA_RESOLVE(handle, api.get_current, cuCtxGetCurrent),
             WITHGPU_CUDA_RESOLVE(handle, api.memory_info, cuMemGetInfo_v2),
             WITHGPU_CUDA_RESOLVE(handle, api.allocate, cuMemAlloc_v2),
             WITHGPU_CUDA_RESOLVE(handle, api.free, cuMemFree_v2),
         }) {
        if (absent != nullptr) {
            missing.emplace_back(absent);
        }
    }
    // Optional: without them, messages say less and the device lookup is not cross-checked.
    WITHGPU_CUDA_RESOLVE(handle, api.driver_version, cuDriverGetVersion);
    WITHGPU_CUDA_RESOLVE(handle, api.device_count, cuDeviceGetCount);
    WITHGPU_CUDA_RESOLVE(handle, api.bus_id_of, cuDeviceGetPCIBusId);
    WITHGPU_CUDA_RESOLVE(handle, api.error_string, cuGetErrorString);
    WITHGPU_CUDA_RESOLVE(handle, api.error_name, cuGetErrorName);
    return missing;
}

#undef WITHGPU_CUDA_RESOLVE

std::string error_text(const Api& api, CUresult rc) {
    const char* text = nullptr;
    const char* name = nullptr;
    if (api.error_string == nullptr || api.error_string(rc, &text) != CUDA_SUCCESS) {
        text = nullptr;
    }
    if (api.error_name == nullptr || api.error_name(rc, &name) != CUDA_SUCCESS) {
        name = nullptr;
    }
    if (text != nullptr && name != nullptr) {
        return fmt::format("{} ({})", text, name);
    }
    return text != nullptr ? std::string(text) : fmt::format("CUDA error {}", rc);
}

Error call_error(const Library& library, const char* call, std::string_view bus_id, CUresult rc) {
    return Error{ErrorKind::failed,
                 fmt::format("{} failed on GPU {}: {}", call, bus_id, error_text(library.api, rc)),
                 {}};
}

namespace {

bool same_device(const Library& library, CUdevice device, const std::string& bus_id) {
    if (library.api.bus_id_of == nullptr) {
        return true; // nothing to check against
    }
    std::array<char, 32> text{};
    if (library.api.bus_id_of(text.data(), static_cast<int>(text.size()), device) != CUDA_SUCCESS) {
        return true; // the lookup itself succeeded; this is only a cross-check
    }
    const auto theirs = normalise_pci_bus_id(std::string_view(text.data()));
    return theirs && *theirs == bus_id; // both normalised, so equal text is equal numbers
}

} // namespace

Result<CUdevice> find_device(const Library& library, const std::string& bus_id) {
    CUdevice device = -1;
    const CUresult rc = library.api.device_by_bus_id(&device, bus_id.c_str());
    if (rc != CUDA_SUCCESS) {
        Error error = call_error(library, "cuDeviceGetByPCIBusId", bus_id, rc);
        if (std::getenv("CUDA_VISIBLE_DEVICES") != nullptr) {
            error.hint = "CUDA_VISIBLE_DEVICES is set in this process, and CUDA sees only the "
                         "GPUs it names.";
        }
        return tl::unexpected(std::move(error));
    }
    if (!same_device(library, device, bus_id)) {
        return fail(ErrorKind::failed,
                    fmt::format("the CUDA driver gave device {} for GPU {}, but that device has "
                                "another bus id",
                                device,
                                bus_id));
    }
    return device;
}

Result<PrimaryContext>
PrimaryContext::retain(const Library& library, CUdevice device, const std::string& bus_id) {
    PrimaryContext context;
    const CUresult rc = library.api.retain(&context.m_context, device);
    if (rc != CUDA_SUCCESS) {
        return tl::unexpected(call_error(library, "cuDevicePrimaryCtxRetain", bus_id, rc));
    }
    context.m_library = &library;
    context.m_device = device;
    return context;
}

PrimaryContext::PrimaryContext(PrimaryContext&& other) noexcept
    : m_library(std::exchange(other.m_library, nullptr)), m_device(other.m_device),
      m_context(std::exchange(other.m_context, nullptr)) {}

PrimaryContext& PrimaryContext::operator=(PrimaryContext&& other) noexcept {
    if (this != &other) {
        reset();
        m_library = std::exchange(other.m_library, nullptr);
        m_device = other.m_device;
        m_context = std::exchange(other.m_context, nullptr);
    }
    return *this;
}

void PrimaryContext::reset() noexcept {
    if (m_library != nullptr) {
        // Nothing useful to do with a failure here: the driver frees it at exit anyway.
        static_cast<void>(m_library->api.release(m_device));
        m_library = nullptr;
        m_context = nullptr;
    }
}

Result<CurrentContext>
CurrentContext::make(const Library& library, CUcontext context, const std::string& bus_id) {
    CUcontext previous = nullptr;
    CUresult rc = library.api.get_current(&previous);
    if (rc != CUDA_SUCCESS) {
        return tl::unexpected(call_error(library, "cuCtxGetCurrent", bus_id, rc));
    }
    rc = library.api.set_current(context);
    if (rc != CUDA_SUCCESS) {
        return tl::unexpected(call_error(library, "cuCtxSetCurrent", bus_id, rc));
    }
    return CurrentContext(library, previous);
}

CurrentContext::CurrentContext(CurrentContext&& other) noexcept
    : m_library(std::exchange(other.m_library, nullptr)), m_previous(other.m_previous) {}

CurrentContext::~CurrentContext() {
    if (m_library != nullptr) {
        static_cast<void>(m_library->api.set_current(m_previous));
    }
}

Result<std::pair<std::uint64_t, std::uint64_t>> free_and_total(const Library& library,
                                                               const std::string& bus_id) {
    std::size_t free = 0;
    std::size_t total = 0;
    const CUresult rc = library.api.memory_info(&free, &total);
    if (rc != CUDA_SUCCESS) {
        return tl::unexpected(call_error(library, "cuMemGetInfo_v2", bus_id, rc));
    }
    return std::pair<std::uint64_t, std::uint64_t>{free, total};
}

} // namespace withgpu::cuda::detail
