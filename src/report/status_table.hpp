// The status board (--status): a pure function of a snapshot, the claims, the queue, the
// time and a Style. Its layout may change between versions; the JSON's does not.
#pragma once

#include "gpu/claim.hpp"
#include "gpu/snapshot.hpp"
#include "queue/ticket.hpp"
#include "report/style.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace withgpu::report {

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

} // namespace withgpu::report
