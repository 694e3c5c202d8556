// The CUDA driver loader. Mirrors the NVML loader (docs/design/nvml.md): only the versioned
// name, RTLD_NOW so a broken library fails at dlopen, RTLD_LOCAL to keep its symbols to
// itself, every symbol typed after abi.hpp.
#include "cuda/driver.hpp"

#include "cuda/library.hpp"

#include <fmt/format.h>

#include <charconv>
#include <dlfcn.h>

namespace withgpu::cuda {

namespace {

using detail::Library;

bool parse_hex(std::string_view text, std::size_t max_digits, unsigned& out) {
    if (text.empty() || text.size() > max_digits) {
        return false;
    }
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, out, 16);
    return ec == std::errc{} && ptr == end;
}

std::string load_hint() {
    return "Holding GPU memory needs the NVIDIA driver's libcuda.so.1 (Debian: libcuda1). "
           "Without a GPU, use the CUDA driver simulator (see docs/simulator.md).";
}

std::string init_hint(CUresult rc) {
    switch (rc) {
    case CUDA_ERROR_STUB_LIBRARY:
        return "This is the CUDA toolkit's stub library, which only links: take its stubs "
               "directory off LD_LIBRARY_PATH.";
    case CUDA_ERROR_NO_DEVICE:
        return "CUDA sees no GPU: check that `nvidia-smi` works, and that CUDA_VISIBLE_DEVICES "
               "does not hide them.";
    case CUDA_ERROR_SYSTEM_DRIVER_MISMATCH:
    case CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE:
        return "libcuda.so.1 and the loaded kernel module do not match (a driver upgrade "
               "without a reboot, or a CUDA forward-compatibility package the GPU does not "
               "support).";
    default:
        return "Check that `nvidia-smi` works on this machine.";
    }
}

// A shared_ptr calls its deleter on null too.
struct DlClose {
    void operator()(void* handle) const noexcept {
        if (handle != nullptr) {
            ::dlclose(handle);
        }
    }
};

} // namespace

Result<std::string> normalise_pci_bus_id(std::string_view bus_id) {
    // domain:bus:device.function, domain:bus:device or bus:device.function
    const auto bad = [&] {
        return fail(ErrorKind::usage,
                    fmt::format("\"{}\" is not a PCI bus id like 0000:07:00.0", bus_id));
    };
    const auto first = bus_id.find(':');
    const auto second = first == std::string_view::npos ? first : bus_id.find(':', first + 1);
    unsigned domain = 0;
    unsigned bus = 0;
    unsigned device = 0;
    unsigned function = 0;
    std::string_view rest = bus_id;
    if (second != std::string_view::npos) {
        if (!parse_hex(bus_id.substr(0, first), 8, domain)) {
            return bad();
        }
        rest = bus_id.substr(first + 1);
    } else if (bus_id.find('.') == std::string_view::npos) {
        return bad(); // "bus:device" alone is not a form the driver takes
    }
    const auto colon = rest.find(':');
    const auto dot = rest.find('.');
    if (colon == std::string_view::npos || !parse_hex(rest.substr(0, colon), 2, bus) ||
        !parse_hex(rest.substr(colon + 1, dot == std::string_view::npos ? dot : dot - colon - 1),
                   2,
                   device) ||
        (dot != std::string_view::npos && !parse_hex(rest.substr(dot + 1), 1, function)) ||
        device > 0x1FU || function > 7U) {
        return bad();
    }
    return fmt::format("{:04x}:{:02x}:{:02x}.{:x}", domain, bus, device, function);
}

Driver::Driver(std::shared_ptr<const Library> library) : m_library(std::move(library)) {}

Result<Driver> Driver::open(const std::string& library) {
    const std::string name = library.empty() ? std::string(default_library) : library;
    ::dlerror();
    // RTLD_NODELETE: once cuInit has run, the driver has threads of its own, so unloading
    // it would pull the code from under them; the handle is still closed like any other.
    std::shared_ptr<void> handle(::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE),
                                 DlClose{});
    if (handle == nullptr) {
        const char* why = ::dlerror();
        return fail(ErrorKind::failed,
                    fmt::format("cannot load the CUDA driver ({}): {}",
                                name,
                                why != nullptr ? why : "dlopen failed"),
                    load_hint());
    }
    auto loaded = std::make_shared<Library>();
    loaded->name = name;
    loaded->handle = std::move(handle);
    if (const auto missing = detail::resolve_api(loaded->handle.get(), loaded->api);
        !missing.empty()) {
        return fail(ErrorKind::failed,
                    fmt::format("{} is not a usable CUDA driver library: it lacks {}",
                                name,
                                fmt::join(missing, ", ")),
                    load_hint());
    }
    const CUresult rc = loaded->api.init(0);
    if (rc != CUDA_SUCCESS) {
        return fail(ErrorKind::failed,
                    fmt::format("the CUDA driver could not be initialised: {} (cuInit in {})",
                                detail::error_text(loaded->api, rc),
                                name),
                    init_hint(rc));
    }
    int version = 0;
    if (loaded->api.driver_version != nullptr &&
        loaded->api.driver_version(&version) == CUDA_SUCCESS) {
        loaded->version = version;
    }
    return Driver(std::move(loaded));
}

const std::string& Driver::library() const {
    return m_library->name;
}

std::optional<int> Driver::version() const {
    return m_library->version;
}

Result<int> Driver::device_count() const {
    if (m_library->api.device_count == nullptr) {
        return fail(ErrorKind::failed, fmt::format("{} has no cuDeviceGetCount", m_library->name));
    }
    int count = 0;
    const CUresult rc = m_library->api.device_count(&count);
    if (rc != CUDA_SUCCESS) {
        return fail(
            ErrorKind::failed,
            fmt::format("cuDeviceGetCount failed: {}", detail::error_text(m_library->api, rc)));
    }
    return count;
}

Result<MemoryInfo> Driver::memory_info(std::string_view pci_bus_id) const {
    const Library& library = *m_library;
    auto bus_id = normalise_pci_bus_id(pci_bus_id);
    if (!bus_id) {
        return tl::unexpected(std::move(bus_id.error()));
    }
    auto device = detail::find_device(library, *bus_id);
    if (!device) {
        return tl::unexpected(std::move(device.error()));
    }
    auto context = detail::PrimaryContext::retain(library, *device, *bus_id);
    if (!context) {
        return tl::unexpected(std::move(context.error()));
    }
    auto current = detail::CurrentContext::make(library, context->get(), *bus_id);
    if (!current) {
        return tl::unexpected(std::move(current.error()));
    }
    auto figures = detail::free_and_total(library, *bus_id);
    if (!figures) {
        return tl::unexpected(std::move(figures.error()));
    }
    return MemoryInfo{figures->first, figures->second};
}

} // namespace withgpu::cuda
