// The public face of nvml/: a session that reads snapshots. Loading is in library.cpp, the
// GPUs' figures in snapshot_reader.cpp, the process lists in processes.cpp. See
// docs/design/nvml.md for the ABI choices (suffixed symbols, versioned structs, the
// process-entry stride guard).
#include "nvml/nvml.hpp"

#include "nvml/library.hpp"
#include "nvml/processes.hpp"
#include "nvml/snapshot_reader.hpp"

namespace withgpu::nvml {

Nvml::Nvml(std::unique_ptr<Library> library) : m_library(std::move(library)) {}
Nvml::Nvml(Nvml&&) noexcept = default;
Nvml& Nvml::operator=(Nvml&&) noexcept = default;
Nvml::~Nvml() = default;

Result<Nvml> Nvml::open(const std::string& library) {
    // Only the versioned name: the unversioned libnvidia-ml.so may be the CUDA toolkit's stub.
    auto loaded = Library::open(library.empty() ? std::string(default_library) : library);
    if (!loaded) {
        return tl::unexpected(std::move(loaded.error()));
    }
    return Nvml(std::move(*loaded));
}

Result<gpu::MachineSnapshot> Nvml::snapshot(const gpu::Figures& figures) const {
    return read_snapshot(*m_library, figures);
}

std::optional<std::vector<gpu::Process>> Nvml::processes(unsigned index) const {
    nvmlDevice_t device = nullptr;
    if (m_library->api().handle_by_index(index, &device) != NVML_SUCCESS) {
        return std::nullopt;
    }
    return read_device_processes(m_library->api(), device).processes;
}

void Nvml::end_session() noexcept {
    m_library->end_session();
}

const std::string& Nvml::library() const {
    return m_library->name();
}

} // namespace withgpu::nvml
