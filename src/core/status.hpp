// Looking without taking: the claims and the queue as --status and the library's status()
// show them, and what a request would get now (--dry-run, would_choose). Read under the
// decision lock held shared (its wait bounded), creating nothing: no lock directory means
// nothing was ever claimed.
#pragma once

#include "core/hooks.hpp"
#include "gpu/claim.hpp"
#include "gpu/snapshot.hpp"
#include "queue/ticket.hpp"
#include "selection/select.hpp"
#include "slurm/allocation.hpp"
#include "util/error.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace withgpu::core {

struct LockView {
    gpu::ClaimMap claims;
    std::vector<queue::Ticket> queue;
    std::vector<std::string> notes; // the odd files that were ignored or could not be read
};

[[nodiscard]] Result<LockView>
current_view(const std::string& lock_dir, const gpu::MachineSnapshot& machine, const Hooks& hooks);

// The document of --status --json (docs/json.md), "slurm" included.
[[nodiscard]] nlohmann::json status_document(const gpu::MachineSnapshot& machine,
                                             const LockView& view,
                                             const std::optional<slurm::Allocation>& allocation);

// What `request` would get now, the queue included (earlier waiters keep their GPUs). Notes
// are passed to hooks.progress.
[[nodiscard]] Result<selection::Decision> decide_now(const std::string& lock_dir,
                                                     const gpu::MachineSnapshot& machine,
                                                     const selection::Request& request,
                                                     const Hooks& hooks);

} // namespace withgpu::core
