// Private to lock/: the one safe way to open a file inside the lock directory, shared by
// the decision lock and the GPU claims. See docs/design/locking.md.
#pragma once

#include "lock/lock_dir.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

#include <string>

namespace withgpu::lock::detail {

struct OpenedLockFile {
    Fd fd;
    bool writable = false; // false: opened O_RDONLY because O_RDWR was refused
};

// Opens (creating if missing, mode 0666) the regular file `name` in `dir`, never following
// a symlink and never using O_CREAT on an existing file (fs.protected_regular).
[[nodiscard]] Result<OpenedLockFile> open_lock_file(const LockDir& dir, const std::string& name);

// flock(2) retried on EINTR; returns 0 or the errno value.
[[nodiscard]] int flock_no_eintr(int fd, int operation) noexcept;

// "Permission denied (EACCES)": errno text for messages.
[[nodiscard]] std::string errno_text(int err);

// The hint for a lock file that is a symlink or not a regular file.
[[nodiscard]] Error tampered_lock_file(const std::string& file, const std::string& what);

} // namespace withgpu::lock::detail
