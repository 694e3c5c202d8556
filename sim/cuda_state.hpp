// The state directory: how the CUDA simulator tells the NVML simulator what memory its
// processes hold, without writing into the machine file (which tests replace while things
// run). One file per process, cuda-<pid>.json, replaced atomically on every change; files of
// dead processes are ignored, as the real driver frees a dead process's memory
// (docs/simulator.md, "The CUDA driver simulator").
#pragma once

#include "machine.hpp"
#include "os/fd.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace withgpu::sim {

inline constexpr const char* state_env = "WITH_GPU_SIM_STATE";

// $WITH_GPU_SIM_STATE if set and not empty, else "<machine_path>.d".
[[nodiscard]] std::string state_dir(const std::string& machine_path);

// A bus id as cuDeviceGetByPCIBusId takes it: "domain:bus:device.function",
// "domain:bus:device" or "bus:device.function", hex, a domain of up to 8 digits.
struct BusId {
    PciAddress address;
    unsigned int function = 0;
};
[[nodiscard]] std::optional<BusId> parse_bus_id(std::string_view text);
// NVML's form, "%08X:%02X:%02X.0": the key in the state files.
[[nodiscard]] std::string bus_id_text(const PciAddress& address);

// When the process started (clock ticks after boot, /proc/<pid>/stat), so that a pid reused
// by another process is not taken for the one that wrote a file. 0 when unknown.
[[nodiscard]] unsigned long long start_time_of(pid_t pid);

struct CudaProcess {
    unsigned int pid = 0;
    unsigned long long bytes = 0;
};
using CudaUsage = std::map<PciAddress, std::vector<CudaProcess>>;

// What the live processes hold, per GPU, leaving out `skip_pid`. A file that cannot be read
// is reported on stderr as "<tag>: <file>: <why>" and skipped.
[[nodiscard]] CudaUsage read_cuda_usage(const std::string& dir, pid_t skip_pid, const char* tag);

// Replaces the file of `pid` (write, then rename), or removes it when nothing is held.
// Creates the directory when needed. Returns what went wrong, or "" on success.
[[nodiscard]] std::string write_cuda_usage(const std::string& dir,
                                           pid_t pid,
                                           unsigned long long start_time,
                                           const std::map<PciAddress, unsigned long long>& held);

// `gpu` with the processes of `usage` on it added as compute processes (MiB, rounded up).
[[nodiscard]] SimGpu with_cuda_usage(SimGpu gpu, const CudaUsage& usage);

// An exclusive flock on "<dir>/lock" for as long as it lives, so that two processes cannot
// both take the last free memory. `error` is set when the lock could not be taken.
class StateLock {
  public:
    explicit StateLock(const std::string& dir);
    StateLock(const StateLock&) = delete;
    StateLock& operator=(const StateLock&) = delete;
    ~StateLock() = default; // closing the descriptor drops the lock
    [[nodiscard]] const std::string& error() const { return m_error; }

  private:
    Fd m_fd;
    std::string m_error;
};

} // namespace withgpu::sim
