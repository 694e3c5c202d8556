// The entry points of the simulated libcuda.so.1: the CUDA driver API calls with-gpu uses,
// answered for the machine described by $WITH_GPU_SIM_MACHINE (docs/simulator.md). Memory
// taken through it is written to the state directory, where the NVML simulator finds it.
#include "cuda/abi.hpp"
#include "cuda_state.hpp"
#include "entry_guard.hpp"
#include "machine.hpp"
#include "machine_file.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unistd.h>
#include <utility>
#include <vector>

// cuda.h leaves the context type opaque. Ours are primary contexts in a fixed array, one
// slot per GPU (by PCI address) on first use, so a handle stays valid for the library's
// lifetime, across changes of the machine file.
struct CUctx_st {
    unsigned int slot;
};

namespace withgpu::sim {
namespace {

constexpr const char* tag = "cuda-sim";
constexpr unsigned long long mib = 1024ULL * 1024ULL;
constexpr unsigned long long granularity = 2 * mib;     // what allocations are rounded up to
constexpr unsigned long long max_request = 1ULL << 50U; // 1 PiB: beyond any simulated GPU

// The calling thread's current context, as in the real driver.
// CUDA's current context is per thread by the API's definition.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
thread_local CUctx_st* t_current = nullptr;

// The GPUs CUDA enumerates, as device ordinals: those not lost, in file order, filtered and
// reordered by `list`, CUDA_VISIBLE_DEVICES as it was at cuInit (indices or UUID prefixes;
// the list ends at the first entry that names nothing or names a GPU again, as in the real
// driver).
std::vector<PciAddress> visible_devices(const Machine& machine,
                                        const std::optional<std::string>& list) {
    std::vector<const SimGpu*> present;
    for (const auto& gpu : machine.gpus) {
        if (!gpu.lost) {
            present.push_back(&gpu);
        }
    }
    std::vector<PciAddress> visible;
    if (!list) {
        for (const auto* gpu : present) {
            visible.push_back(address_of(*gpu));
        }
        return visible;
    }
    const std::string_view text = *list;
    for (std::size_t start = 0; start < text.size();) {
        const auto comma = std::min(text.find(',', start), text.size());
        std::string entry(text.substr(start, comma - start));
        std::erase_if(entry, [](unsigned char c) { return std::isspace(c) != 0; });
        start = comma + 1;
        const auto named = [&](const SimGpu* gpu) { return gpu->uuid.starts_with(entry); };
        const SimGpu* chosen = nullptr;
        if (!entry.empty() && entry.find_first_not_of("0123456789") == std::string::npos) {
            const auto index = std::strtoul(entry.c_str(), nullptr, 10);
            chosen = entry.size() < 4 && index < present.size() ? present[index] : nullptr;
        } else if (entry.starts_with("GPU-") &&
                   std::count_if(present.begin(), present.end(), named) == 1) {
            chosen = *std::find_if(present.begin(), present.end(), named); // unambiguous
        }
        if (chosen == nullptr ||
            std::find(visible.begin(), visible.end(), address_of(*chosen)) != visible.end()) {
            break;
        }
        visible.push_back(address_of(*chosen));
    }
    return visible;
}

std::optional<std::string> visible_devices_variable() {
    const char* list = std::getenv("CUDA_VISIBLE_DEVICES");
    return list == nullptr ? std::nullopt : std::optional<std::string>(list);
}

const SimGpu* gpu_at(const Machine& machine, const PciAddress& address) {
    for (const auto& gpu : machine.gpus) {
        if (address_of(gpu) == address) {
            return &gpu;
        }
    }
    return nullptr;
}

struct Allocation {
    PciAddress gpu;
    unsigned long long bytes = 0;
};

struct PrimaryContext {
    unsigned int retains = 0;
    unsigned long long bytes = 0; // charged while retained
};

// The simulated driver's state: whether cuInit ran (and in which process), the devices it
// enumerates, primary contexts and allocations. One per loaded library.
class CudaDriver {
  public:
    CudaDriver() noexcept {
        for (unsigned int i = 0; i < m_handles.size(); ++i) {
            m_handles[i].slot = i;
        }
    }

    CUresult init(unsigned int flags) {
        const std::lock_guard lock(m_mutex);
        forget_if_forked();
        if (flags != 0) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        if (m_owner != 0) {
            return CUDA_SUCCESS;
        }
        auto attempt = m_file.load();
        if (attempt.unset) {
            return CUDA_ERROR_NO_DEVICE; // like a machine without the kernel module
        }
        if (!attempt.machine) {
            return CUDA_ERROR_UNKNOWN;
        }
        if (const int code = fault_for(attempt.machine->faults, "cuInit"); code != 0) {
            return code;
        }
        m_visible_variable = visible_devices_variable();
        auto visible = visible_devices(*attempt.machine, m_visible_variable);
        if (visible.empty()) {
            return CUDA_ERROR_NO_DEVICE;
        }
        m_file.commit(std::move(*attempt.machine));
        m_visible = std::move(visible);
        m_generation = m_file.generation();
        m_owner = ::getpid();
        m_start_time = start_time_of(m_owner);
        return CUDA_SUCCESS;
    }

    // Answers without cuInit, as the real driver does.
    CUresult driver_version(int* version) {
        const std::lock_guard lock(m_mutex);
        forget_if_forked();
        std::optional<Machine> loaded;
        if (m_owner != 0) {
            m_file.refresh();
        } else {
            loaded = m_file.load().machine;
        }
        const Machine* machine = m_owner != 0 ? m_file.machine() : (loaded ? &*loaded : nullptr);
        const Machine defaults;
        if (machine == nullptr) {
            machine = &defaults;
        }
        if (const int code = fault_for(machine->faults, "cuDriverGetVersion"); code != 0) {
            return code;
        }
        if (version == nullptr) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        *version = machine->cuda_driver_version;
        return CUDA_SUCCESS;
    }

    CUresult device_count(int* count) {
        return locked([&](const Machine& machine) -> CUresult {
            if (const int code = fault_for(machine.faults, "cuDeviceGetCount"); code != 0) {
                return code;
            }
            if (count == nullptr) {
                return CUDA_ERROR_INVALID_VALUE;
            }
            *count = static_cast<int>(m_visible.size());
            return CUDA_SUCCESS;
        });
    }

    CUresult device_by_bus_id(CUdevice* device, const char* text) {
        return locked([&](const Machine&) -> CUresult {
            if (device == nullptr || text == nullptr) {
                return CUDA_ERROR_INVALID_VALUE;
            }
            const auto id = parse_bus_id(text);
            if (!id) {
                return CUDA_ERROR_INVALID_VALUE;
            }
            const auto found = std::find(m_visible.begin(), m_visible.end(), id->address);
            if (id->function != 0 || found == m_visible.end()) {
                return CUDA_ERROR_INVALID_DEVICE;
            }
            const auto ordinal = static_cast<CUdevice>(found - m_visible.begin());
            return on_device("cuDeviceGetByPCIBusId", ordinal, [&](const SimGpu&) -> CUresult {
                *device = ordinal;
                return CUDA_SUCCESS;
            });
        });
    }

    CUresult bus_id_of(char* text, int length, CUdevice device) {
        return locked([&](const Machine&) -> CUresult {
            return on_device("cuDeviceGetPCIBusId", device, [&](const SimGpu& gpu) -> CUresult {
                if (text == nullptr || length <= 0) {
                    return CUDA_ERROR_INVALID_VALUE;
                }
                std::array<char, 32> id{};
                const int written = std::snprintf(id.data(),
                                                  id.size(),
                                                  "%04X:%02X:%02X.0",
                                                  gpu.pci_domain,
                                                  gpu.pci_bus & 0xFFU,
                                                  gpu.pci_device & 0x1FU);
                if (written < 0 || written >= length) {
                    return CUDA_ERROR_INVALID_VALUE;
                }
                std::memcpy(text, id.data(), static_cast<std::size_t>(written) + 1);
                return CUDA_SUCCESS;
            });
        });
    }

    CUresult retain(CUcontext* context, CUdevice device) {
        return locked([&](const Machine&) -> CUresult {
            return on_device("cuDevicePrimaryCtxRetain", device, [&](const SimGpu& gpu) {
                return retain_on(gpu, context);
            });
        });
    }

    CUresult release(CUdevice device) {
        return locked([&](const Machine&) -> CUresult {
            return on_device(
                "cuDevicePrimaryCtxRelease_v2", device, [&](const SimGpu& gpu) -> CUresult {
                    PrimaryContext& primary = m_contexts[address_of(gpu)];
                    if (primary.retains == 0) {
                        return CUDA_ERROR_INVALID_CONTEXT;
                    }
                    if (--primary.retains > 0) {
                        return CUDA_SUCCESS;
                    }
                    // The last release destroys the context and everything allocated in it.
                    primary.bytes = 0;
                    std::erase_if(m_allocations, [&](const auto& item) {
                        return item.second.gpu == address_of(gpu);
                    });
                    return persist("cuDevicePrimaryCtxRelease_v2");
                });
        });
    }

    CUresult set_current(CUcontext context) {
        return locked([&](const Machine&) -> CUresult {
            if (context == nullptr) {
                t_current = nullptr;
                return CUDA_SUCCESS;
            }
            const auto address = address_of_context(context);
            if (!address) {
                return CUDA_ERROR_INVALID_CONTEXT;
            }
            return on_gpu("cuCtxSetCurrent", *address, [&](const SimGpu&) -> CUresult {
                t_current = context;
                return CUDA_SUCCESS;
            });
        });
    }

    CUresult get_current(CUcontext* context) {
        return locked([&](const Machine&) -> CUresult {
            if (context == nullptr) {
                return CUDA_ERROR_INVALID_VALUE;
            }
            *context = t_current;
            return CUDA_SUCCESS;
        });
    }

    CUresult memory_info(std::size_t* free, std::size_t* total) {
        return in_context("cuMemGetInfo_v2", [&](const SimGpu& gpu) -> CUresult {
            if (free == nullptr || total == nullptr) {
                return CUDA_ERROR_INVALID_VALUE;
            }
            const auto figures = figures_for(gpu);
            *free = figures.free;
            *total = figures.total - figures.reserved; // what contexts can have at all
            return CUDA_SUCCESS;
        });
    }

    CUresult allocate(CUdeviceptr* pointer, std::size_t size) {
        return in_context("cuMemAlloc_v2", [&](const SimGpu& gpu) -> CUresult {
            if (pointer == nullptr || size == 0) {
                return CUDA_ERROR_INVALID_VALUE;
            }
            if (size > max_request) {
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            const auto bytes = (size + granularity - 1) / granularity * granularity;
            const CUdeviceptr address = m_next_address;
            const CUresult rc = charge(gpu, bytes, [&](bool undo) {
                if (undo) {
                    m_allocations.erase(address);
                } else {
                    m_allocations[address] = {address_of(gpu), bytes};
                }
            });
            if (rc == CUDA_SUCCESS) {
                m_next_address += bytes;
                *pointer = address;
            }
            return rc;
        });
    }

    CUresult free(CUdeviceptr pointer) {
        return locked([&](const Machine&) -> CUresult {
            const auto found = m_allocations.find(pointer);
            if (found == m_allocations.end()) {
                return CUDA_ERROR_INVALID_VALUE;
            }
            const Allocation allocation = found->second;
            return on_gpu("cuMemFree_v2", allocation.gpu, [&](const SimGpu&) -> CUresult {
                m_allocations.erase(pointer);
                const CUresult rc = persist("cuMemFree_v2");
                if (rc != CUDA_SUCCESS) {
                    m_allocations[pointer] = allocation;
                }
                return rc;
            });
        });
    }

  private:
    // The real driver cannot be used in a forked child at all; the simulator forgets what the
    // parent had (it is still the parent's), so that the child may start over with cuInit.
    void forget_if_forked() {
        if (m_owner == 0 || m_owner == ::getpid()) {
            return;
        }
        m_owner = 0;
        m_contexts.clear();
        m_allocations.clear();
        m_visible.clear();
        m_calls.clear();
        m_written_dir.clear();
        m_file.clear();
        t_current = nullptr;
    }

    // Init check, machine reload, then body(machine). A new version of the machine file is
    // enumerated again (the real driver never changes its devices; tests change machines).
    template <typename Body> CUresult locked(Body&& body) {
        const std::lock_guard lock(m_mutex);
        forget_if_forked();
        if (m_owner == 0) {
            return CUDA_ERROR_NOT_INITIALIZED;
        }
        m_file.refresh();
        const Machine* machine = m_file.machine();
        if (machine == nullptr) {
            return CUDA_ERROR_UNKNOWN; // the current file is malformed (reported once)
        }
        if (m_generation != m_file.generation()) {
            m_visible = visible_devices(*machine, m_visible_variable);
            m_generation = m_file.generation();
            m_calls.clear();
        }
        return body(*machine);
    }

    // Within locked(): the ordinal, then on_gpu.
    template <typename Body>
    CUresult on_device(std::string_view function, CUdevice device, Body&& body) {
        if (device < 0 || static_cast<std::size_t>(device) >= m_visible.size()) {
            return CUDA_ERROR_INVALID_DEVICE;
        }
        return on_gpu(function, m_visible[static_cast<std::size_t>(device)], body);
    }

    // Within locked(): the GPU still in the file, its fault, lost, then body(gpu).
    template <typename Body>
    CUresult on_gpu(std::string_view function, const PciAddress& address, Body&& body) {
        const SimGpu* gpu = gpu_at(*m_file.machine(), address);
        if (gpu == nullptr) {
            return CUDA_ERROR_INVALID_DEVICE; // gone from the machine file
        }
        if (const int code = fault_for(gpu->faults, function);
            code != 0 && !let_through(*gpu, function)) {
            return code;
        }
        if (gpu->lost) {
            return CUDA_ERROR_DEVICE_UNAVAILABLE;
        }
        return body(*gpu);
    }

    // A delayed fault ({"code", "after": N}) lets the first N calls on the GPU through,
    // counted since the machine file was last loaded.
    bool let_through(const SimGpu& gpu, std::string_view function) {
        const auto after = gpu.fault_after.find(function);
        if (after == gpu.fault_after.end()) {
            return false;
        }
        auto& calls = m_calls[{address_of(gpu), std::string(function)}];
        return calls++ < after->second;
    }

    // A call on the current context's GPU: body(gpu).
    template <typename Body> CUresult in_context(std::string_view function, Body&& body) {
        return locked([&](const Machine&) -> CUresult {
            const auto address = address_of_context(t_current);
            if (!address || m_contexts[*address].retains == 0) {
                return CUDA_ERROR_INVALID_CONTEXT;
            }
            return on_gpu(function, *address, body);
        });
    }

    CUresult retain_on(const SimGpu& gpu, CUcontext* context) {
        if (context == nullptr) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        const PciAddress address = address_of(gpu);
        auto slot = std::find(m_slots.begin(), m_slots.end(), address);
        if (slot == m_slots.end()) {
            if (m_slots.size() == m_handles.size()) {
                std::fprintf(stderr, "%s: more GPUs over time than contexts to give\n", tag);
                return CUDA_ERROR_UNKNOWN;
            }
            slot = m_slots.insert(m_slots.end(), address);
        }
        PrimaryContext& primary = m_contexts[address];
        if (primary.retains > 0) {
            ++primary.retains;
        } else {
            // Creating the context takes memory, like the real one's several hundred MiB.
            const auto bytes = gpu.cuda_context_mib * mib;
            const CUresult rc = charge(gpu, bytes, [&](bool undo) {
                primary.retains = undo ? 0 : 1;
                primary.bytes = undo ? 0 : bytes;
            });
            if (rc != CUDA_SUCCESS) {
                return rc;
            }
        }
        *context = &m_handles[static_cast<std::size_t>(slot - m_slots.begin())];
        return CUDA_SUCCESS;
    }

    // Takes `bytes` on the GPU if they are free: apply(false) records them, and is undone
    // with apply(true) if the state file cannot be written. Under the state directory's lock,
    // so that two processes cannot both take the last free memory.
    template <typename Apply>
    CUresult charge(const SimGpu& gpu, unsigned long long bytes, Apply apply) {
        const StateLock lock(state_dir(m_file.path()));
        if (!lock.error().empty()) {
            std::fprintf(stderr, "%s: %s\n", tag, lock.error().c_str());
            return CUDA_ERROR_UNKNOWN;
        }
        if (bytes > figures_for(gpu).free) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        apply(false);
        const CUresult rc = persist("memory accounting");
        if (rc != CUDA_SUCCESS) {
            apply(true);
        }
        return rc;
    }

    // The GPU's memory as NVML would report it now: the file's processes, every other live
    // process's CUDA memory (from the state directory) and ours.
    MemoryFigures figures_for(const SimGpu& gpu) const {
        auto usage = read_cuda_usage(state_dir(m_file.path()), m_owner, tag);
        const auto mine = held();
        if (const auto ours = mine.find(address_of(gpu)); ours != mine.end()) {
            usage[ours->first].push_back({static_cast<unsigned int>(m_owner), ours->second});
        }
        return memory_figures(with_cuda_usage(gpu, usage));
    }

    // Bytes this process holds per GPU: retained contexts and allocations.
    std::map<PciAddress, unsigned long long> held() const {
        std::map<PciAddress, unsigned long long> bytes;
        for (const auto& [address, primary] : m_contexts) {
            if (primary.retains > 0) {
                bytes[address] += primary.bytes;
            }
        }
        for (const auto& [pointer, allocation] : m_allocations) {
            bytes[allocation.gpu] += allocation.bytes;
        }
        return bytes;
    }

    // Writes this process's file into the state directory of the current machine file, and
    // takes it out of the one it was in before, if the machine file moved.
    CUresult persist(const char* what) {
        const auto dir = state_dir(m_file.path());
        if (!m_written_dir.empty() && m_written_dir != dir) {
            static_cast<void>(write_cuda_usage(m_written_dir, m_owner, m_start_time, {}));
        }
        const auto bytes = held();
        const auto error = write_cuda_usage(dir, m_owner, m_start_time, bytes);
        if (!error.empty()) {
            std::fprintf(stderr, "%s: %s: %s\n", tag, what, error.c_str());
            return CUDA_ERROR_UNKNOWN;
        }
        m_written_dir = bytes.empty() ? std::string() : dir;
        return CUDA_SUCCESS;
    }

    [[nodiscard]] std::optional<PciAddress> address_of_context(CUcontext context) const {
        for (const auto& handle : m_handles) {
            if (&handle == context && handle.slot < m_slots.size()) {
                return m_slots[handle.slot];
            }
        }
        return std::nullopt;
    }

    std::mutex m_mutex;
    pid_t m_owner = 0; // the process that ran cuInit; 0: not initialised
    unsigned long long m_start_time = 0;
    MachineFile m_file{tag};
    unsigned long m_generation = 0;                // of the file m_visible was made from
    std::optional<std::string> m_visible_variable; // CUDA_VISIBLE_DEVICES at cuInit
    std::vector<PciAddress> m_visible;             // device ordinal -> GPU
    std::array<CUctx_st, 256> m_handles{};         // slot -> context handle
    std::vector<PciAddress> m_slots;               // slot -> GPU, kept for good
    std::map<PciAddress, PrimaryContext> m_contexts;
    std::map<CUdeviceptr, Allocation> m_allocations;
    std::map<std::pair<PciAddress, std::string>, unsigned long long> m_calls; // delayed faults
    std::string m_written_dir;                // where this process's file is, "" when it has none
    CUdeviceptr m_next_address = 1ULL << 32U; // never 0, never reused
};

CudaDriver& driver() {
    static CudaDriver instance;
    return instance;
}

template <typename Body> CUresult guarded(const char* function, Body&& body) noexcept {
    return run_guarded(tag, function, CUDA_ERROR_UNKNOWN, body);
}

CUresult lookup(const char* (*table)(int), CUresult error, const char** text) {
    if (text == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *text = table(error);
    return *text != nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

} // namespace
} // namespace withgpu::sim

using withgpu::sim::driver;
using withgpu::sim::guarded;

extern "C" {

CUresult cuInit(unsigned int Flags) {
    return guarded(__func__, [&] { return driver().init(Flags); });
}

CUresult cuDriverGetVersion(int* driverVersion) {
    return guarded(__func__, [&] { return driver().driver_version(driverVersion); });
}

CUresult cuDeviceGetCount(int* count) {
    return guarded(__func__, [&] { return driver().device_count(count); });
}

CUresult cuDeviceGetByPCIBusId(CUdevice* dev, const char* pciBusId) {
    return guarded(__func__, [&] { return driver().device_by_bus_id(dev, pciBusId); });
}

CUresult cuDeviceGetPCIBusId(char* pciBusId, int len, CUdevice dev) {
    return guarded(__func__, [&] { return driver().bus_id_of(pciBusId, len, dev); });
}

CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
    return guarded(__func__, [&] { return driver().retain(pctx, dev); });
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
    return guarded(__func__, [&] { return driver().release(dev); });
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
    return guarded(__func__, [&] { return driver().set_current(ctx); });
}

CUresult cuCtxGetCurrent(CUcontext* pctx) {
    return guarded(__func__, [&] { return driver().get_current(pctx); });
}

CUresult cuMemGetInfo_v2(std::size_t* free, std::size_t* total) {
    return guarded(__func__, [&] { return driver().memory_info(free, total); });
}

CUresult cuMemAlloc_v2(CUdeviceptr* dptr, std::size_t bytesize) {
    return guarded(__func__, [&] { return driver().allocate(dptr, bytesize); });
}

CUresult cuMemFree_v2(CUdeviceptr dptr) {
    return guarded(__func__, [&] { return driver().free(dptr); });
}

CUresult cuGetErrorString(CUresult error, const char** pStr) {
    return withgpu::sim::lookup(withgpu::sim::cuda_error_string, error, pStr);
}

CUresult cuGetErrorName(CUresult error, const char** pStr) {
    return withgpu::sim::lookup(withgpu::sim::cuda_error_name, error, pStr);
}

} // extern "C"
