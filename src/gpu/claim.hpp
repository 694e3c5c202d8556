// Who holds a GPU claim, as recorded in the claim's lock file (diagnostic only:
// the lock itself, not this record, decides whether a GPU is claimed).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace withgpu::gpu {

// Where claims live when neither --lock-dir nor WITH_GPU_LOCK_DIR says otherwise. Created on
// first use with mode 1777 (sticky, like /tmp), so every user of the machine can claim in it.
inline constexpr const char* default_lock_dir = "/tmp/with-gpu";

struct ClaimHolder {
    std::optional<int> pid;                 // the job's pid (the command with-gpu started)
    std::optional<int> supervisor_pid;      // the with-gpu process watching it
    std::optional<std::string> user;        // user name of the claimer
    std::optional<std::string> command;     // the command line, space-joined
    std::optional<std::int64_t> since_unix; // when the claim was taken, seconds since the epoch
    // Set when the claim is held for a SLURM job by `with-gpu --slurm-prolog` (docs/slurm.md):
    // the job id; `user` is then the job's user and `pid` the holder process.
    std::optional<std::string> slurm_job{}; // (initialised: older brace-inits stay complete)
    // The user whose claim file holds the claim (its name says so; only that user and root
    // can write it), unlike the fields above, which the record's writer chose.
    std::optional<unsigned> file_uid{};
    // `with-gpu --hold`: the memory held on this GPU for the job and since when (unset: no
    // hold now), and GPUs the job was found using without a claim ("GPU 3").
    std::optional<std::uint64_t> hold_bytes{};
    std::optional<std::int64_t> hold_since_unix{};
    std::vector<std::string> misplaced{};
};

// Claimed GPUs by UUID. A GPU missing from the map is not claimed.
using ClaimMap = std::map<std::string, ClaimHolder>;

} // namespace withgpu::gpu
