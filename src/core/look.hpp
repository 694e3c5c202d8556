// One look at the queue and the claims, under the decision lock the caller holds: whose turn
// it is, for a request, and what it would get.
#pragma once

#include "gpu/snapshot.hpp"
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

// Whose turn it is for `request`, counting only tickets that arrived before `before_seq` (all
// of them when nullopt) and passing over waiters stopped past the grace period.
[[nodiscard]] Result<queue::Turn> look(const lock::LockDir& dir,
                                       const gpu::MachineSnapshot& machine,
                                       const selection::Request& request,
                                       std::optional<std::uint64_t> before_seq,
                                       std::int64_t now_unix,
                                       std::vector<std::string>& notes);

// Whether the waiter with this pid is stopped (SIGSTOP, Ctrl-Z), from /proc.
[[nodiscard]] queue::WaiterProcess waiter_process(int pid);

} // namespace withgpu::core
