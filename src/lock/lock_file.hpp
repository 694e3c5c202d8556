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

// The hint for a lock file that is a symlink or not a regular file.
[[nodiscard]] Error tampered_lock_file(const std::string& file, const std::string& what);

} // namespace withgpu::lock::detail
