// A handle on one process, to await its end with a time limit.
#pragma once

#include "os/fd.hpp"

#include <chrono>
#include <sys/types.h>

namespace withgpu {

// A pidfd (Linux 5.3): it keeps naming the same process even once its pid is reused, and
// becomes readable when that process ends.
class ProcessHandle {
  public:
    // An invalid handle when the process is gone or the kernel has no pidfd.
    [[nodiscard]] static ProcessHandle open(pid_t pid) noexcept;

    [[nodiscard]] bool valid() const noexcept { return m_fd.valid(); }

    // True once the process has ended (a child of ours is then a zombie, not yet reaped);
    // false when `limit` passes first, or when the handle is invalid and so cannot tell.
    // Signals that arrive meanwhile are handled as they come and the wait goes on.
    [[nodiscard]] bool ends_within(std::chrono::milliseconds limit) const noexcept;

  private:
    explicit ProcessHandle(Fd fd) noexcept : m_fd(std::move(fd)) {}
    Fd m_fd;
};

} // namespace withgpu
