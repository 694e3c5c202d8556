// What happens in the lock directory, as a waiter needs to know it: inotify on the directory.
#pragma once

#include "lock/lock_dir.hpp"
#include "os/fd.hpp"

#include <chrono>

namespace withgpu::lock {

// Wakes a waiter when something happens in the lock directory that may free a GPU for it:
// a claim ends (the last descriptor of a gpu-*.lock file opened for writing is closed,
// which the kernel does for a killed job too) or a ticket leaves. It also notes when a claim
// file may have appeared (created, linked or renamed in), so that a waiter's looks can reuse
// their last listing of the directory until then (ClaimListing, lock/claim.hpp). Uses inotify;
// where that is unavailable (e.g. the per-user limit of inotify instances is reached) it falls
// back to waking every 200 ms and to listing at every look, so waiting still works, only less
// promptly and less cheaply.
class ReleaseWatch {
  public:
    [[nodiscard]] static ReleaseWatch open(const LockDir& dir);

    // Readable when something happened; -1 when degraded (then look again every
    // degraded_interval instead).
    [[nodiscard]] int fd() const noexcept { return m_fd.get(); }
    [[nodiscard]] bool degraded() const noexcept { return !m_fd.valid(); }
    // Reads what happened: true if a claim ended or a ticket left (other files' events are
    // not news). Never blocks.
    [[nodiscard]] bool take_events();
    // Reads what happened, then says whether a claim file may have appeared in the directory
    // since the last call (always true when degraded, or when events were lost to an
    // overflow). Never blocks. Call it before listing, under the decision lock: what appears
    // after the call is reported by the next one.
    [[nodiscard]] bool take_names_added();

    static constexpr std::chrono::milliseconds degraded_interval{200};

  private:
    explicit ReleaseWatch(Fd fd) : m_fd(std::move(fd)) {}
    Fd m_fd;
    bool m_names_added = true; // nothing listed yet
};

} // namespace withgpu::lock
