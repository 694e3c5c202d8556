// Waiting for a lock held by another process in a way the caller can bound and cancel,
// without signals: flock(2) (and a blocking record lock) has no timeout, so the blocking call
// runs on a helper thread and the caller polls a descriptor that becomes readable when the
// lock is granted. A library caller
// (the Python package) can therefore wait behind a ticket or for the decision lock as the CLI
// does, and give up at a deadline or on Ctrl-C.
#pragma once

#include "os/fd.hpp"
#include "util/error.hpp"

#include <memory>

namespace withgpu::lock {

class PendingLock {
  public:
    // Takes `operation` (LOCK_SH or LOCK_EX) on `fd`: at once if nobody holds a conflicting
    // lock, otherwise in the background. Errors: flock failing other than EWOULDBLOCK, no
    // thread or eventfd to be had.
    [[nodiscard]] static Result<PendingLock> start(Fd fd, int operation);
    // Takes a shared record lock (fcntl F_OFD_SETLKW, F_RDLCK) on the first byte of `fd`'s
    // file, the same way. Record locks and flock locks do not conflict with each other: a
    // queue ticket carries one of each (lock/queue_files.hpp).
    [[nodiscard]] static Result<PendingLock> start_first_byte_shared(Fd fd);

    PendingLock(PendingLock&&) noexcept;
    PendingLock& operator=(PendingLock&&) noexcept;
    PendingLock(const PendingLock&) = delete;
    PendingLock& operator=(const PendingLock&) = delete;
    // If the lock was not granted yet, the helper thread gives it back as soon as it gets
    // it (it closes the descriptor then): abandoning a wait never leaves a lock held.
    ~PendingLock();

    // True once the lock is held (check after ready_fd() became readable), false while it is
    // pending; an Error if the background lock call failed.
    [[nodiscard]] Result<bool> granted();
    // Readable once the lock is granted; -1 when it was granted at once.
    [[nodiscard]] int ready_fd() const noexcept;
    // The descriptor holding the lock; only after granted().
    [[nodiscard]] Fd take();

    struct Shared; // what the waiting thread and the PendingLock share (pending_lock.cpp)

  private:
    // Locks `fd` with `call`, which returns 0 or an errno and blocks unless `wait` is false.
    using LockCall = int (*)(int fd, int operation, bool wait) noexcept;
    [[nodiscard]] static Result<PendingLock> start_with(Fd fd, LockCall call, int operation);
    explicit PendingLock(std::shared_ptr<Shared> shared) : m_shared(std::move(shared)) {}
    std::shared_ptr<Shared> m_shared;
};

} // namespace withgpu::lock
