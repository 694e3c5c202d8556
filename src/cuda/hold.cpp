#include "cuda/hold.hpp"

#include "cuda/library.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace withgpu::cuda {

namespace {

constexpr double gib = 1024.0 * 1024.0 * 1024.0;
// Drivers round allocations up to 2 MiB; holding whole units keeps held_bytes() exact.
constexpr std::uint64_t granularity = 2ULL << 20U;

// Bytes `amount` comes to on a GPU with `free` bytes free.
Result<std::uint64_t> requested(const Amount& amount, std::uint64_t free) {
    if (const auto* bytes = std::get_if<Bytes>(&amount)) {
        if (bytes->count == 0) {
            return fail(ErrorKind::usage, "a hold of 0 bytes");
        }
        return bytes->count;
    }
    const double fraction = std::get<Fraction>(amount).of_free;
    if (!std::isfinite(fraction) || fraction <= 0.0 || fraction > 1.0) {
        return fail(ErrorKind::usage,
                    fmt::format("a hold of {} of the free memory: the fraction must be more than "
                                "0 and at most 1",
                                fraction));
    }
    return static_cast<std::uint64_t>(std::floor(static_cast<double>(free) * fraction));
}

// What may be allocated without asking close to the free memory, which fails.
std::uint64_t allowed(std::uint64_t free) {
    const std::uint64_t margin = std::max(hold_min_margin_bytes, free / 50);
    return free > margin ? (free - margin) / granularity * granularity : 0;
}

} // namespace

Hold::Hold() = default;

Hold::Hold(Hold&& other) noexcept {
    *this = std::move(other);
}

Hold::~Hold() {
    release();
}

Hold& Hold::operator=(Hold&& other) noexcept {
    if (this != &other) {
        release();
        m_library = std::move(other.m_library);
        m_bus_id = std::move(other.m_bus_id);
        m_context = std::move(other.m_context);
        m_allocations = std::move(other.m_allocations);
        m_held = std::exchange(other.m_held, 0);
        m_requested = std::exchange(other.m_requested, 0);
        m_free_before = std::exchange(other.m_free_before, 0);
    }
    return *this;
}

Result<Hold> Hold::make(const Driver& driver, std::string_view pci_bus_id, Amount amount) {
    Hold hold;
    hold.m_library = driver.m_library;
    const detail::Library& library = *hold.m_library;
    auto bus_id = normalise_pci_bus_id(pci_bus_id);
    if (!bus_id) {
        return tl::unexpected(std::move(bus_id.error()));
    }
    hold.m_bus_id = std::move(*bus_id);
    auto device = detail::find_device(library, hold.m_bus_id);
    if (!device) {
        return tl::unexpected(std::move(device.error()));
    }
    auto context = detail::PrimaryContext::retain(library, *device, hold.m_bus_id);
    if (!context) {
        return tl::unexpected(std::move(context.error()));
    }
    hold.m_context = std::make_unique<detail::PrimaryContext>(std::move(*context));
    auto current = detail::CurrentContext::make(library, hold.m_context->get(), hold.m_bus_id);
    if (!current) {
        return tl::unexpected(std::move(current.error()));
    }
    auto figures = detail::free_and_total(library, hold.m_bus_id);
    if (!figures) {
        return tl::unexpected(std::move(figures.error()));
    }
    hold.m_free_before = figures->first;
    auto wanted = requested(amount, hold.m_free_before);
    if (!wanted) {
        return tl::unexpected(std::move(wanted.error()));
    }
    hold.m_requested = *wanted;
    // allowed() is a whole number of units, so rounding up after the cap stays within it.
    const std::uint64_t capped = std::min(hold.m_requested, allowed(hold.m_free_before));
    const std::uint64_t target = (capped + granularity - 1) / granularity * granularity;
    if (auto done = hold.allocate(target); !done) {
        return tl::unexpected(std::move(done.error()));
    }
    return hold;
}

// Within the context: chunks until `target`, or until the first out-of-memory.
Result<void> Hold::allocate(std::uint64_t target) {
    const detail::Library& library = *m_library;
    CUresult rc = CUDA_SUCCESS;
    while (m_held < target) {
        const std::uint64_t chunk = std::min(hold_chunk_bytes, target - m_held);
        CUdeviceptr pointer = 0;
        rc = library.api.allocate(&pointer, chunk);
        if (rc != CUDA_SUCCESS) {
            break;
        }
        m_allocations.push_back(pointer);
        m_held += chunk;
    }
    if (rc == CUDA_ERROR_OUT_OF_MEMORY && m_held > 0) {
        return {}; // keep what was held
    }
    if (rc != CUDA_SUCCESS || m_held == 0) {
        Error error = detail::call_error(library, "cuMemAlloc_v2", m_bus_id, rc);
        if (rc == CUDA_SUCCESS) {
            error.message = fmt::format("GPU {} has {:.2f} GiB free: too little to hold any",
                                        m_bus_id,
                                        static_cast<double>(m_free_before) / gib);
        }
        return tl::unexpected(std::move(error));
    }
    return {};
}

void Hold::release() noexcept {
    if (m_library == nullptr) {
        return;
    }
    if (m_context != nullptr && !m_allocations.empty()) {
        // The pointers belong to the context, so it is made current to free them.
        auto current = detail::CurrentContext::make(*m_library, m_context->get(), m_bus_id);
        for (const CUdeviceptr pointer : m_allocations) {
            static_cast<void>(m_library->api.free(pointer)); // its release frees them anyway
        }
    }
    m_allocations.clear();
    m_held = 0;
    m_context.reset();
    m_library.reset();
}

bool Hold::active() const noexcept {
    return m_library != nullptr;
}

} // namespace withgpu::cuda
