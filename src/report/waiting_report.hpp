// The one line that says why we are still waiting, for the progress display.
#pragma once

#include "gpu/snapshot.hpp"
#include "queue/turn.hpp"

#include <chrono>
#include <string>

namespace withgpu::report {

// "waiting for 2 GPUs, 3rd in queue, 1m05s: GPU 1 claimed by alice (pid 4242, train.py) for
// 2h13m; GPU 3: 5.2 GiB free < 20 GiB". Only GPUs this request could ever use are named.
// `waited` is left out when negative (for lines that are printed only when they change).
[[nodiscard]] std::string
waiting_line(const queue::Turn& turn, unsigned gpus_needed, std::chrono::seconds waited);

} // namespace withgpu::report
