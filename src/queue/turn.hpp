// Whose turn it is: the fairness rule of the queue, as pure code over a
// snapshot, the live tickets and the claims (docs/design/queue.md).
//
// Rule: a waiter may use only GPUs that no earlier waiter could ever use.
// Earlier waiters "could ever use" a GPU when nothing permanent rules it out for
// their request (model, exclusions, total memory, visibility). So a waiter for
// 4 GPUs is never starved by a stream of 1-GPU jobs that want the same GPUs, while
// jobs that want different GPUs (another model, an explicit --gpu list) go ahead.
#pragma once

#include "gpu/claim.hpp"
#include "gpu/snapshot.hpp"
#include "queue/ticket.hpp"
#include "selection/select.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace withgpu::queue {

// UUIDs of the GPUs `request` could ever use on `machine`.
[[nodiscard]] std::set<std::string> usable_gpus(const gpu::MachineSnapshot& machine,
                                                const selection::Request& request);

// What the process of an earlier waiter is doing, as read from /proc by the I/O side.
enum class WaiterProcess {
    running, // or sleeping: anything but stopped
    stopped, // state T or t: SIGSTOP, Ctrl-Z, a debugger
    unknown, // no such pid here (gone, another PID namespace, hidepid)
};

// How long a stopped waiter keeps its place for others (docs/design/queue.md).
inline constexpr std::chrono::seconds stopped_waiter_grace{10};

// How often a waiter blocked behind another reads whether that one is stopped. A waiter that
// says so itself before it stops (Ctrl-Z on the CLI) can be stopped unannounced only by SIGSTOP
// or a debugger: it is checked rarely, so that a thousand blocked waiters cost next to nothing.
// One that cannot tell (a library caller, an older with-gpu) is checked often.
inline constexpr std::chrono::seconds stop_check_when_told{60};
inline constexpr std::chrono::seconds stop_check_when_untold = stopped_waiter_grace / 2;

// The rule for stopped waiters: one that is stopped now and has been in line for at least
// `grace` (by its ticket's `since`) is passed over: it reserves no GPU and nobody waits
// behind it, until it runs again. A stopped process cannot say when it stopped, so the
// grace counts from when it joined the queue.
[[nodiscard]] bool past_grace(const Ticket& ticket,
                              std::int64_t now_unix,
                              std::chrono::seconds grace = stopped_waiter_grace);
// past_grace and stopped: the caller need read a waiter's process only when it is past_grace.
[[nodiscard]] bool passed_over(const Ticket& ticket,
                               WaiterProcess process,
                               std::int64_t now_unix,
                               std::chrono::seconds grace = stopped_waiter_grace);

struct Turn {
    selection::Decision decision; // GPUs wanted by earlier waiters rejected as reserved
    unsigned position = 1;        // 1 = first in line, counting live waiters before us
    // When every GPU this request could use is wanted by an earlier waiter, nothing can
    // change for us until one of those waiters leaves: this is the latest such waiter's
    // seq, to wait for. nullopt: some usable GPU is ours to watch.
    std::optional<std::uint64_t> wait_behind;
    int wait_behind_pid = 0; // that waiter's pid, to notice it being stopped while we wait
};

// `earlier`: the live tickets that arrived before us, in seq order (all of them for a
// newcomer). `claims`: current claims. `now_unix`: for reason texts only.
[[nodiscard]] Turn take_turn(const gpu::MachineSnapshot& machine,
                             const std::vector<Ticket>& earlier,
                             const selection::Request& mine,
                             const gpu::ClaimMap& claims,
                             std::int64_t now_unix);

// "1st", "2nd", "3rd", "11th", ...
[[nodiscard]] std::string ordinal(unsigned n);

} // namespace withgpu::queue
