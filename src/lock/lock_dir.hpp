// The shared lock directory that holds one claim file per GPU. Every with-gpu
// process of every user on the machine meets here.
#pragma once

#include "gpu/claim.hpp"
#include "os/fd.hpp"
#include "util/error.hpp"

#include <string>
#include <string_view>

namespace withgpu::lock {

using gpu::default_lock_dir;

// The names with-gpu gives its files there: claim files "gpu-<UUID>.<uid>.lock"
// (lock/claim.hpp), tickets "queue-<seq>.ticket" (lock/queue_files.hpp), the decision lock.
inline constexpr std::string_view claim_file_prefix = "gpu-";
inline constexpr std::string_view claim_file_suffix = ".lock";
inline constexpr std::string_view ticket_file_prefix = "queue-";
inline constexpr std::string_view ticket_file_suffix = ".ticket";
inline constexpr const char* decision_lock_name = "decide.lock";

class LockDir {
  public:
    // Opens `path` (O_DIRECTORY|O_NOFOLLOW). When missing and `create` is true, creates it
    // with mode 1777 (parent directories are not created). Refuses (ErrorKind::failed,
    // with a hint) a path that is a symlink, not a directory, or writable by a non-root user
    // other than the caller without the sticky bit.
    [[nodiscard]] static Result<LockDir> open(const std::string& path, bool create);

    [[nodiscard]] const std::string& path() const noexcept { return m_path; }
    [[nodiscard]] int fd() const noexcept { return m_fd.get(); }

  private:
    LockDir(std::string path, Fd fd) : m_path(std::move(path)), m_fd(std::move(fd)) {}
    std::string m_path;
    Fd m_fd;
};

// Removes a lock directory that is no longer used (a SLURM job's, after the job): the files
// with-gpu makes in it (claim files, tickets, decide.lock), then the directory if that left it
// empty. Safe for root inside a directory every user can write: a symlink or unsafe directory
// is refused as by open(), nothing is followed and nothing else is removed. Best effort.
void remove_lock_dir(const std::string& path) noexcept;

} // namespace withgpu::lock
