// Private to lock/: safe opening of files inside the lock directory, shared by the decision
// lock, the GPU claims and the queue. See docs/design/locking.md.
#pragma once

#include "lock/lock_dir.hpp"
#include "os/fd.hpp"
#include "util/error.hpp"

#include <fcntl.h>
#include <string>
#include <vector>

namespace withgpu::lock::detail {

// For every open in the shared directory: never follow a symlink, never leak into a child,
// never become a controlling terminal, and never block in open() on a planted FIFO (the
// caller then refuses anything that is not a regular file). No effect on flock.
inline constexpr int safe_open_flags = O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

struct OpenedLockFile {
    Fd fd;
    bool writable = false; // false: opened O_RDONLY because O_RDWR was refused
};

// Opens (creating if missing, mode 0666) the regular file `name` in `dir`, shared by all
// users (decide.lock), never following a symlink and never using O_CREAT on an existing
// file (fs.protected_regular).
[[nodiscard]] Result<OpenedLockFile> open_lock_file(const LockDir& dir, const std::string& name);

// The names in the lock directory (without "." and "..").
[[nodiscard]] Result<std::vector<std::string>> list_names(const LockDir& dir);

// flock(2) retried on EINTR; returns 0 or the errno value.
[[nodiscard]] int flock_no_eintr(int fd, int operation) noexcept;

// A record lock owned by the open file description (F_OFD_SETLK, or F_OFD_SETLKW when `wait`)
// of `type` (F_RDLCK, F_WRLCK or F_UNLCK) on the first byte of `fd`'s file, retried on EINTR:
// a queue ticket's awake lock (lock/queue_files.hpp). Record locks and flock locks do not
// interact. Returns 0 or the errno value (EAGAIN when another holds a conflicting lock).
[[nodiscard]] int first_byte_lock(int fd, short type, bool wait) noexcept;

// Whether another open file description holds a write lock on the first byte of `fd`'s file.
[[nodiscard]] bool first_byte_write_locked(int fd) noexcept;

// The hint for a lock file that is a symlink or not a regular file.
[[nodiscard]] Error tampered_lock_file(const std::string& file, const std::string& what);

} // namespace withgpu::lock::detail
