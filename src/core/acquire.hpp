// Getting GPUs: look at the claims and the queue, claim if it is our turn, and otherwise
// (when waiting) take a ticket and sleep until something that matters happens: the waiter
// ahead leaves, a claim ends, the poll period passes, the deadline comes, or the caller
// cancels. The one acquisition path: the CLI and the library both call acquire().
#pragma once

#include "core/hooks.hpp"
#include "gpu/snapshot.hpp"
#include "lock/claim.hpp"
#include "lock/lock_dir.hpp"
#include "lock/release_watch.hpp"
#include "nvml/nvml.hpp"
#include "selection/select.hpp"
#include "util/error.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>

namespace withgpu::core {

// Who waits, for the ticket other waiters and --status read.
struct Identity {
    int pid = 0;
    uid_t uid = 0; // the ticket names the user: looked up only if one is written (NSS is slow)
    std::string command;
};

struct Waiting {
    bool wait = false; // false: take what is free now or fail
    std::optional<std::chrono::milliseconds> timeout;
    std::chrono::milliseconds poll{2000}; // how often NVML is read again while waiting
    // Who asks, for the wording of errors: the with-gpu command (flags) or a program through
    // the library (settings, leases).
    enum class Caller { command_line, library };
    Caller caller = Caller::command_line;
};

struct Acquired {
    lock::Claim claim;
    gpu::MachineSnapshot machine; // the snapshot the choice was made on
    selection::Decision decision;
    // The watch of a waiter that watched, for the caller to close once the job runs: closing
    // an inotify instance now and then waits for the kernel (about 15 ms, an SRCU grace period
    // on the development VM), which must not delay the job's start.
    std::optional<lock::ReleaseWatch> release_watch;
};

// Claims GPUs for `request` (its `visible` filled in, core/placement.hpp) in `dir`. `machine`
// is refreshed through `nvml` while waiting (NVML stays open for the whole wait). Errors:
// no_gpu_now (nothing free, not waiting), impossible (never on this machine), timeout,
// cancelled, and what the lock directory or NVML report.
[[nodiscard]] Result<Acquired> acquire(const selection::Request& request,
                                       const Waiting& waiting,
                                       const Identity& who,
                                       const nvml::Nvml& nvml,
                                       gpu::MachineSnapshot machine,
                                       const lock::LockDir& dir,
                                       const Hooks& hooks);

// "350ms", "4.2s", "2m05s": how long something waited (waits are often short).
[[nodiscard]] std::string format_wait(std::chrono::nanoseconds waited);

} // namespace withgpu::core
