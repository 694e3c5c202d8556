// --status --json: a pure function of a snapshot, the claims and the queue.
// The shape is a public contract (docs/json.md).
#pragma once

#include "gpu/claim.hpp"
#include "gpu/snapshot.hpp"
#include "queue/ticket.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace withgpu::report {

// Bumped only when a field changes meaning or disappears; new fields may be added.
inline constexpr int json_format_version = 1;

[[nodiscard]] nlohmann::json status_json(const gpu::MachineSnapshot& machine,
                                         const gpu::ClaimMap& claims,
                                         const std::vector<queue::Ticket>& queue);

// "2026-11-22T10:03:00Z": the JSON's "since" fields.
[[nodiscard]] std::string format_utc(std::int64_t unix_seconds);

} // namespace withgpu::report
