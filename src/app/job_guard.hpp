// Beside a running job, in a thread of its own: memory held on the job's GPUs until the job's
// own processes use them (--hold), and a watch for the job's processes on GPUs it did not
// claim (--on-misplaced). "The job's own" is the command and every descendant; with-gpu is a
// child subreaper while it runs, so orphans stay in the family.
#pragma once

#include "config/setting.hpp"
#include "gpu/claim.hpp"
#include "lock/claim.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

namespace withgpu::app {

struct GuardedGpu {
    unsigned index = 0;
    std::string uuid;
    std::string pci_bus_id;
};

struct GuardSettings {
    config::HoldAmount hold; // off: no hold, only the placement check
    std::chrono::milliseconds hold_timeout{300000};
    bool kill_misplaced = false;                    // else a warning
    std::chrono::milliseconds hold_poll{100};       // how often NVML is read while holding
    std::chrono::milliseconds placement_poll{2000}; // ... and afterwards
    std::string nvml_library;
    std::string cuda_library; // empty: libcuda.so.1 through the loader
    bool quiet = false;
};

// How often the guard reads NVML while it holds memory (stated in docs/hold.md).
inline constexpr std::chrono::milliseconds hold_poll_interval{100};

class JobGuard {
  public:
    // Makes with-gpu a child subreaper; call before the job starts.
    static void adopt_orphans();

    // How long after the job starts the guard first has work: at once with a hold, else at
    // the first placement check. The caller starts it then, so that a job which ends sooner
    // costs no thread (run::JobHooks::after).
    [[nodiscard]] static std::chrono::milliseconds first_work_after(const GuardSettings& settings);

    // Starts guarding `job` (its pid) on `claimed`, the other GPUs being `others`. `claim`
    // and `holder` are the claim's, for recording holds in the claim files (--status shows
    // them); the guard is their only writer from now on.
    JobGuard(GuardSettings settings,
             pid_t job,
             std::vector<GuardedGpu> claimed,
             std::vector<GuardedGpu> others,
             lock::Claim& claim,
             gpu::ClaimHolder holder);
    JobGuard(const JobGuard&) = delete;
    JobGuard& operator=(const JobGuard&) = delete;
    // Stops the thread; every hold still made is freed.
    ~JobGuard();

  private:
    struct State;
    std::unique_ptr<State> m_state;
};

} // namespace withgpu::app
