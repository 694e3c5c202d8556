// Read-only access to the NVIDIA driver through NVML, loaded with dlopen at
// run time so that with-gpu starts and explains itself without a driver.
// Never creates a CUDA context.
#pragma once

#include "gpu/snapshot.hpp"
#include "util/error.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace withgpu::nvml {

// The library dlopen'ed when no explicit path is given: found through the normal
// loader search, so LD_LIBRARY_PATH works (and selects the simulator in tests).
inline constexpr const char* default_library = "libnvidia-ml.so.1";

class Library; // library.hpp, internal to nvml/

// An initialised NVML session: dlopen + nvmlInit on open, nvmlShutdown + dlclose
// on destruction. Move-only. Open it once per process and take many snapshots.
class Nvml {
  public:
    // `library` is a file name or path for dlopen; empty means default_library.
    // Errors (ErrorKind::driver) name the library and dlerror()/nvmlErrorString,
    // with a hint (install the driver, --nvml-library, or the simulator).
    [[nodiscard]] static Result<Nvml> open(const std::string& library = {});

    Nvml(Nvml&&) noexcept;
    Nvml& operator=(Nvml&&) noexcept;
    ~Nvml();

    // Reads every GPU. A GPU that fails (GPU_IS_LOST, NO_PERMISSION on its handle, ...) is
    // returned with `error` set and the rest of its fields as far as they could be read;
    // it never fails the whole snapshot. Only a failure to count devices is an Error.
    // Processes carry what NVML knows (pid, kind, memory); user and command are left for the
    // caller to find in /proc (core::read_machine). Of the optional figures only `figures` are
    // read (the others stay unknown).
    [[nodiscard]] Result<gpu::MachineSnapshot>
    snapshot(const gpu::Figures& figures = gpu::Figures::all()) const;

    // The processes on the GPU with this NVML index only (pids, kinds, memory): a cheap second
    // look at chosen GPUs. nullopt when they cannot be read.
    [[nodiscard]] std::optional<std::vector<gpu::Process>> processes(unsigned index) const;

    // Ends the NVML session (nvmlShutdown: the driver's descriptors close) but keeps the
    // library loaded until destruction, which then only unloads it: a launch ends the session
    // before the job starts and unloads after, while the job starts. No call may follow.
    void end_session() noexcept;

    // The path or name that was loaded, for messages.
    [[nodiscard]] const std::string& library() const;

  private:
    explicit Nvml(std::unique_ptr<Library> library);
    std::unique_ptr<Library> m_library;
};

} // namespace withgpu::nvml
