// One look at the queue and the claims, under the decision lock the caller holds: whose turn
// it is, for a request, and what it would get.
#pragma once

#include "gpu/snapshot.hpp"
#include "lock/claim.hpp"
#include "lock/lock_dir.hpp"
#include "queue/ticket.hpp"
#include "queue/turn.hpp"
#include "selection/select.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace withgpu::core {

// The live tickets, decoded, in arrival order. Unreadable tickets are skipped (they cannot be
// honoured, and must not jam the queue). Odd files met on the way are described in `notes`.
[[nodiscard]] Result<std::vector<queue::Ticket>> read_tickets(const lock::LockDir& dir,
                                                              std::vector<std::string>& notes);

// Where a looker stands in the queue: which tickets it must read.
struct QueuePlace {
    std::optional<std::uint64_t> mine; // its ticket's seq; nullopt: not in line (all are earlier)
    // The tickets that may still be ahead of `mine`: nullopt until the first look in line, which
    // lists the directory; later looks read only these, by name. No ticket numbered below ours
    // can appear once ours exists (docs/design/queue.md), so the set only shrinks, and the head
    // of the queue reads no ticket at all.
    std::optional<std::vector<std::uint64_t>> ahead;
};

// Whose turn it is for `request`, counting only the tickets that arrived before ours (all of
// them when not in line) and passing over waiters stopped past the grace period. Updates
// `place.ahead` when in line; the claims are found through `claim_files`, which a waiter keeps
// from look to look.
[[nodiscard]] Result<queue::Turn> look(const lock::LockDir& dir,
                                       const gpu::MachineSnapshot& machine,
                                       const selection::Request& request,
                                       QueuePlace& place,
                                       lock::ClaimListing& claim_files,
                                       std::int64_t now_unix,
                                       std::vector<std::string>& notes);

// Whether the waiter with this pid is stopped (SIGSTOP, Ctrl-Z), from /proc.
[[nodiscard]] queue::WaiterProcess waiter_process(int pid);

} // namespace withgpu::core
