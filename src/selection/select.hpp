// Choosing GPUs: pure code over a snapshot, the current claims and a request.
// No clock, files, NVML or environment: everything arrives as values.
#pragma once

#include "gpu/claim.hpp"
#include "gpu/snapshot.hpp"
#include "selection/gpu_ref.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace withgpu::selection {

struct Request {
    unsigned min_gpus = 1; // take at least this many ...
    unsigned max_gpus = 1; // ... and at most this many, the best first (>= min_gpus)

    std::vector<GpuRef> only;    // --gpu: candidates restricted to these (empty: all)
    std::vector<GpuRef> exclude; // --exclude (and banned GPUs from configuration)
    std::vector<GpuRef> banned;  // the system file's banned GPUs (also in `exclude`): only
                                 // for saying why a GPU is refused
    VisibleDevices visible;      // inherited CUDA_VISIBLE_DEVICES

    std::optional<std::string> gpu_type; // --gpu-type: case-insensitive substring of the name
    bool strict_type = false;            // --strict: only gpu_type matches (else: preferred)

    std::optional<std::uint64_t> min_free_bytes;     // --min-memory
    std::optional<unsigned> max_utilization_percent; // --max-util
    std::optional<unsigned> max_temperature_c;       // --max-temp
    std::optional<double> max_power_w;               // --max-power
    bool require_idle = false;                       // --require-idle: no process at all

    friend bool operator==(const Request&, const Request&) = default;
};

// The filters of a Request one by one, with the names the queue's tickets give them: code
// that must handle every filter (the ticket's encoding) visits them, so that a filter added to
// Request above is added here, next to it, and nowhere else.
template <typename R, typename Visit> void for_each_filter(R& request, Visit&& visit) {
    visit("gpu_type", request.gpu_type);
    visit("strict_type", request.strict_type);
    visit("min_free_bytes", request.min_free_bytes);
    visit("max_utilization_percent", request.max_utilization_percent);
    visit("max_temperature_c", request.max_temperature_c);
    visit("max_power_w", request.max_power_w);
    visit("require_idle", request.require_idle);
}

// Why one GPU cannot be chosen. `permanent` reasons cannot change while this machine and
// request stay the same (excluded, wrong model, too little memory even when empty, not visible,
// lost); the others can (claimed, too little free memory now, busy, hot, ...).
struct Rejection {
    // e.g. "3.1 GiB free < 20 GiB", "util 87% > 10%", "claimed by alice ...". Safe to print:
    // text from elsewhere (a claimer's user name and command, a GPU's error) went through
    // text::printable.
    std::string reason;
    bool permanent = false;
    // How many bytes at the end of `reason` only say how long it has held (" for 2h13m"); 0
    // when none. A display that prints a line only on news compares reasons without them.
    std::size_t age_bytes = 0;

    [[nodiscard]] std::string_view reason_without_age() const {
        return std::string_view(reason).substr(0, reason.size() - age_bytes);
    }
};

struct GpuVerdict {
    unsigned index = 0;                // NVML index
    std::vector<Rejection> rejections; // empty: eligible
    bool preferred = false;            // matches --gpu-type (only meaningful without --strict)
    bool chosen = false;
};

struct Decision {
    enum class Outcome {
        chosen,    // `chosen` holds min_gpus..max_gpus GPUs
        none_now,  // not enough eligible GPUs now, but it could happen later (wait or exit 75)
        impossible // fewer than min_gpus GPUs could ever qualify (exit 125)
    };
    Outcome outcome = Outcome::none_now;
    std::vector<unsigned> chosen;     // NVML indices in rank order (best first)
    std::vector<GpuVerdict> verdicts; // one per GPU in the snapshot, in snapshot order
    std::string summary; // one line, e.g. "need 2 GPUs, 1 eligible" or "chose GPU 3, GPU 1"
};

// GPUs held back for earlier waiters in the queue: UUID -> why ("wanted by alice's job, 1st
// in queue"). A reserved GPU is rejected like a claimed one (not permanently).
using ReservedMap = std::map<std::string, std::string>;

// Picks GPUs. Ranking among eligible GPUs: --gpu-type matches first (without --strict), then
// most free memory (unknown last), then fewest processes, then lowest index.
// `now_unix` is only used to say how long a claim has been held in rejection reasons.
// Unknown metrics fail the thresholds that need them ("utilisation unknown").
[[nodiscard]] Decision select(const gpu::MachineSnapshot& machine,
                              const Request& request,
                              const gpu::ClaimMap& claims,
                              std::int64_t now_unix,
                              const ReservedMap& reserved = {});

// The optional figures select() needs for `request`: those of its thresholds. Placement
// (minor numbers, CPUs) is never needed to choose (SLURM's side asks for it itself), nor are
// processes' users and commands (core::look reads them where it marks squatters).
[[nodiscard]] gpu::Figures figures_for(const Request& request);

// "GPU 2: 3.1 GiB free < 20 GiB; util 87% > 10%" for one verdict with rejections.
[[nodiscard]] std::string describe(const GpuVerdict& verdict);

} // namespace withgpu::selection
