// Getting GPUs: look at the claims and the queue, claim if it is our turn, and
// otherwise (with --wait) take a ticket and wait for our turn without polling.
#pragma once

#include "cli/options.hpp"
#include "gpu/snapshot.hpp"
#include "lock/claim.hpp"
#include "lock/lock_dir.hpp"
#include "nvml/nvml.hpp"
#include "queue/turn.hpp"
#include "util/error.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace withgpu::app {

struct Acquired {
    lock::Claim claim;
    gpu::MachineSnapshot machine; // the snapshot the choice was made on
    selection::Decision decision;
};

// What the queue and the claims look like now, for `request`, counting only tickets that
// arrived before `before_seq` (all of them when it is nullopt). Call with a DecisionLock
// held. Unreadable tickets are skipped (they cannot be honoured, and must not jam the queue).
// Odd files met on the way are described in `notes`.
[[nodiscard]] Result<queue::Turn> look(const lock::LockDir& dir,
                                       const gpu::MachineSnapshot& machine,
                                       const selection::Request& request,
                                       std::optional<std::uint64_t> before_seq,
                                       std::vector<std::string>& notes);

// The live tickets, decoded, in arrival order. Call with a DecisionLock held.
[[nodiscard]] Result<std::vector<queue::Ticket>> read_tickets(const lock::LockDir& dir,
                                                              std::vector<std::string>& notes);

// Claims GPUs for `request`, waiting in the queue when options.wait is set. `machine` is
// refreshed through `nvml` while waiting (NVML stays initialised, once, for the whole wait).
[[nodiscard]] Result<Acquired> acquire(const cli::Options& options,
                                       const selection::Request& request,
                                       const nvml::Nvml& nvml,
                                       gpu::MachineSnapshot machine,
                                       const lock::LockDir& dir);

} // namespace withgpu::app
