// Rendering what --status shows: pure functions of a snapshot and the claims.
// The JSON shape is a public contract (docs/json.md).
#pragma once

#include "gpu/claim.hpp"
#include "gpu/snapshot.hpp"
#include "queue/ticket.hpp"
#include "report/style.hpp"

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

// The status board (docs/status.md): "NVIDIA driver X, N GPUs", then one row per GPU (name,
// memory bar, utilisation, temperature, power, claim holder), its processes below it, then
// the queue. Rows are cut to style.width; colours only when style.color.
[[nodiscard]] std::string status_table(const gpu::MachineSnapshot& machine,
                                       const gpu::ClaimMap& claims,
                                       const std::vector<queue::Ticket>& queue,
                                       std::int64_t now_unix,
                                       const Style& style = {});

// Processes listed under one GPU before the rest are summed up in one line.
inline constexpr std::size_t max_processes_shown = 10;

// "2026-11-22T10:03:00Z"
[[nodiscard]] std::string format_utc(std::int64_t unix_seconds);

} // namespace withgpu::report
