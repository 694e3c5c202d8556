// Holding memory on one GPU through the CUDA driver, so that a program started without
// with-gpu finds the GPU taken until the job that claimed it uses it (issue 8's --hold).
#pragma once

#include "cuda/driver.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace withgpu::cuda {

namespace detail {
class PrimaryContext;
}

// How much to hold: a fraction of the GPU's free memory, in (0, 1] (gpu-waiter holds 1/4),
// or a number of bytes.
struct Fraction {
    double of_free = 0.25;
};
struct Bytes {
    std::uint64_t count = 0;
};
using Amount = std::variant<Fraction, Bytes>;

// Memory held on one GPU: its primary context retained and memory allocated in it, all
// freed and the context released on destruction or release(). Move-only; not for use from
// two threads at once. The caller's current CUDA context is left as it was.
//
// Allocation goes in chunks (hold_chunk_bytes), and never closer than a margin to the free
// memory, since asking for nearly all of it fails. It stops at the first out-of-memory and
// keeps what it has, so held_bytes() may be less than requested_bytes(); only nothing held
// at all is an error. Measured on the simulator (RelWithDebInfo, tests/cuda's
// HoldTest.TwoGpusAreHeldApartAndMeasured): a 20 GiB hold takes about 1 ms with the state
// directory on tmpfs and 10-100 ms on a busy disk-backed /tmp, for a context and 20
// cuMemAlloc_v2 calls that each rewrite one state file. Not yet measured on a real GPU,
// where creating the context is expected to dominate.
class Hold {
  public:
    // Retains the primary context of the GPU with this PCI bus id (NVML's form is fine),
    // asks its free memory from inside the context, and allocates `amount`. Errors
    // (ErrorKind::failed, naming the GPU and the CUDA error): the device is not found,
    // the context cannot be made, nothing at all could be allocated. ErrorKind::usage: an
    // amount of 0 bytes, or a fraction outside (0, 1].
    [[nodiscard]] static Result<Hold>
    make(const Driver& driver, std::string_view pci_bus_id, Amount amount);

    Hold(Hold&& other) noexcept;
    Hold& operator=(Hold&& other) noexcept;
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    ~Hold();

    // Frees everything and releases the context. Idempotent; held_bytes() is 0 afterwards.
    void release() noexcept;

    [[nodiscard]] bool active() const noexcept;
    // Bytes allocated (the context's own memory not included; NVML shows both).
    [[nodiscard]] std::uint64_t held_bytes() const noexcept { return m_held; }
    // What `amount` came to: the bytes asked, or the fraction of the free memory.
    [[nodiscard]] std::uint64_t requested_bytes() const noexcept { return m_requested; }
    // cuMemGetInfo_v2's free memory inside the context, before allocating.
    [[nodiscard]] std::uint64_t free_bytes_before() const noexcept { return m_free_before; }
    // The normalised bus id ("0000:07:00.0").
    [[nodiscard]] const std::string& pci_bus_id() const noexcept { return m_bus_id; }

  private:
    Hold();
    [[nodiscard]] Result<void> allocate(std::uint64_t target);

    std::shared_ptr<const detail::Library> m_library;
    std::string m_bus_id;
    std::unique_ptr<detail::PrimaryContext> m_context;
    std::vector<unsigned long long> m_allocations; // CUdeviceptr values
    std::uint64_t m_held = 0;
    std::uint64_t m_requested = 0;
    std::uint64_t m_free_before = 0;
};

// The size of one cuMemAlloc_v2 call of a hold, and the least a hold leaves free.
inline constexpr std::uint64_t hold_chunk_bytes = 1ULL << 30U;        // 1 GiB
inline constexpr std::uint64_t hold_min_margin_bytes = 256ULL << 20U; // or 2 % of free

} // namespace withgpu::cuda
