// The one line that says why we are still waiting, for the progress display.
#pragma once

#include "queue/turn.hpp"
#include "selection/select.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace withgpu::report {

// Why a waiter still waits, as data: the waiting line is drawn from it, and a display that
// prints a line only on news compares two of them without the ages in them.
struct WaitingState {
    unsigned gpus_needed = 1;
    unsigned position = 1; // in the queue; 1 = first
    // GPUs this request could use some day but not now, each with its reasons (at most
    // max_gpus_named), and how many more there are.
    std::vector<selection::GpuVerdict> named;
    std::size_t more = 0;
};

inline constexpr std::size_t max_gpus_named = 4;

[[nodiscard]] WaitingState waiting_state(const queue::Turn& turn, unsigned gpus_needed);

// "waiting for 2 GPUs, 3rd in queue, 1m05s: GPU 1: claimed by alice (pid 4242, train.py) for
// 2h13m; GPU 3: 5.2 GiB free < 20 GiB". Without `waited`, the "1m05s" is left out.
[[nodiscard]] std::string waiting_line(const WaitingState& state,
                                       std::optional<std::chrono::seconds> waited);

// Whether `a` and `b` say the same but for how long things have lasted ("for 1s" -> "for 3s"):
// a claim growing older is not news.
[[nodiscard]] bool same_but_ages(const WaitingState& a, const WaitingState& b);

} // namespace withgpu::report
