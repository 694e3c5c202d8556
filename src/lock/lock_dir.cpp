#include "lock/lock_dir.hpp"

#include "lock/lock_file.hpp"
#include "os/errno_text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace withgpu::lock {

namespace {

constexpr mode_t shared_dir_mode = 01777; // like /tmp: everyone may create, only owners delete

tl::unexpected<Error> refuse(const std::string& path, const std::string& why, std::string hint) {
    return fail(
        ErrorKind::failed, fmt::format("unsafe lock directory {}: {}", path, why), std::move(hint));
}

std::string other_dir_hint(const std::string& path) {
    return fmt::format("choose another --lock-dir (or WITH_GPU_LOCK_DIR), or ask an "
                       "administrator to create {} as root with mode 1777 "
                       "(install -d -m 1777 {})",
                       path,
                       path);
}

// Explains an open(O_DIRECTORY|O_NOFOLLOW) failure of `name` in `parent` with fstatat, which
// tells a symlink from a plain file.
tl::unexpected<Error>
explain_open_failure(const std::string& path, int parent, const std::string& name, int err) {
    struct stat st {};
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode)) {
            return refuse(path,
                          "it is a symbolic link; with-gpu does not follow one here because "
                          "someone may be tampering with the lock directory",
                          other_dir_hint(path));
        }
        if (!S_ISDIR(st.st_mode)) {
            return fail(ErrorKind::failed,
                        fmt::format("lock directory {} exists but is not a directory", path),
                        "remove it or choose another --lock-dir (or WITH_GPU_LOCK_DIR)");
        }
    }
    std::string hint;
    if (err == EACCES) {
        hint = other_dir_hint(path);
    } else if (err == ENOENT) {
        hint = "create it (mode 1777 for a directory shared by all users) or choose another "
               "--lock-dir";
    }
    return fail(ErrorKind::failed,
                fmt::format("cannot open lock directory {}: {}", path, errno_text(err)),
                std::move(hint));
}

// Creates the directory with mode 1777. Returns whether we created it, or errno; EEXIST
// means a concurrent with-gpu created it first, which is fine.
tl::expected<bool, int> create_shared_dir(int parent, const std::string& name) {
    if (::mkdirat(parent, name.c_str(), shared_dir_mode) != 0) {
        if (errno == EEXIST) {
            return false;
        }
        return tl::unexpected(errno);
    }
    return true;
}

// Who may write into the directory decides whether lock files can be swapped under us.
Result<void> check_safe(const std::string& path, const struct stat& st) {
    const uid_t me = ::geteuid();
    const bool sticky = (st.st_mode & S_ISVTX) != 0;
    const bool others_may_write =
        (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 || (st.st_uid != me && st.st_uid != 0);
    if (others_may_write && !sticky) {
        // Without the sticky bit anyone who can write the directory can delete or rename a
        // lock file; a newcomer then locks a fresh inode and two jobs share a GPU.
        const bool mine = st.st_uid == me;
        return refuse(path,
                      fmt::format("it is writable by {} but not sticky, so they could delete "
                                  "or replace lock files (mode {:04o}, owner uid {})",
                                  (st.st_mode & (S_IWGRP | S_IWOTH)) != 0
                                      ? "other users"
                                      : "its owner (another user)",
                                  st.st_mode & 07777,
                                  st.st_uid),
                      mine ? fmt::format("run: chmod 1777 {}  (or choose another --lock-dir)", path)
                           : other_dir_hint(path));
    }
    return {};
}

// A symlink above the lock directory is followed only when root made it and only root can
// replace it (like /var/run -> /run): owned by root, in a directory owned by root that is
// not writable by group or others.
bool trusted_symlink(int parent, const struct stat& link) {
    struct stat dir {};
    return S_ISLNK(link.st_mode) && link.st_uid == 0 && ::fstat(parent, &dir) == 0 &&
           dir.st_uid == 0 && (dir.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

struct Parent {
    Fd fd;            // O_PATH descriptor of the directory that holds the lock directory
    std::string name; // the lock directory's name in it ("." for "/")
};

// Walks `path` one component at a time with O_NOFOLLOW, whatever its spelling (repeated or
// trailing slashes, "."), so that no symlink is followed unnoticed except trusted ones.
Result<Parent> open_parent(const std::string& path) {
    std::vector<std::string> parts;
    for (std::size_t begin = 0; begin <= path.size();) {
        const std::size_t end = std::min(path.find('/', begin), path.size());
        std::string part = path.substr(begin, end - begin);
        if (!part.empty() && part != ".") {
            parts.push_back(std::move(part));
        }
        begin = end + 1;
    }
    Fd current(::open(path.front() == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!current) {
        return fail(ErrorKind::failed,
                    fmt::format("cannot open lock directory {}: {}", path, errno_text(errno)));
    }
    if (parts.empty()) {
        return Parent{std::move(current), "."};
    }
    std::string walked = path.front() == '/' ? "" : ".";
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        const std::string& part = parts[i];
        walked += "/" + part;
        Fd next(
            ::openat(current.get(), part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next) {
            int err = errno;
            struct stat st {};
            if (::fstatat(current.get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode)) {
                if (!trusted_symlink(current.get(), st)) {
                    return refuse(path,
                                  fmt::format("{} is a symbolic link that someone other than "
                                              "root could change; with-gpu does not follow "
                                              "one because someone may be tampering with the "
                                              "lock directory",
                                              walked),
                                  "give the path without symbolic links (see realpath), or "
                                  "choose another --lock-dir");
                }
                next.reset(::openat(current.get(), part.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
            }
            if (!next) {
                return fail(
                    ErrorKind::failed,
                    fmt::format(
                        "cannot open lock directory {}: {}: {}", path, walked, errno_text(err)),
                    err == ENOENT ? "create its parent directory first, or choose "
                                    "another --lock-dir"
                                  : "");
            }
        }
        current = std::move(next);
    }
    return Parent{std::move(current), parts.back()};
}

} // namespace

Result<LockDir> LockDir::open(const std::string& path, bool create) {
    if (path.empty()) {
        return fail(ErrorKind::usage,
                    "the lock directory path is empty",
                    "give --lock-dir a directory path");
    }
    auto parent = open_parent(path);
    if (!parent) {
        return tl::unexpected(std::move(parent.error()));
    }
    const int at = parent->fd.get();
    const char* name = parent->name.c_str();
    constexpr int flags = O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY;
    Fd fd(::openat(at, name, flags));
    if (!fd && errno == ENOENT && create) {
        const auto created = create_shared_dir(at, parent->name);
        if (!created) {
            const int err = created.error();
            return fail(ErrorKind::failed,
                        fmt::format("cannot create lock directory {}: mkdir failed: {}",
                                    path,
                                    errno_text(err)),
                        err == ENOENT ? "create its parent directory first, or choose another "
                                        "--lock-dir"
                                      : "choose another --lock-dir (or WITH_GPU_LOCK_DIR)");
        }
        fd.reset(::openat(at, name, flags));
        if (fd && *created) {
            struct stat st {};
            // The umask may have cleared bits; fix them on what we opened (not by path), and
            // only if it is still ours: anything else is checked below instead.
            if (::fstat(fd.get(), &st) == 0 && st.st_uid == ::geteuid() &&
                (st.st_mode & 07777) != shared_dir_mode) {
                if (::fchmod(fd.get(), shared_dir_mode) != 0) {
                    return fail(ErrorKind::failed,
                                fmt::format("cannot chmod 1777 lock directory {}: {}",
                                            path,
                                            errno_text(errno)),
                                "choose another --lock-dir");
                }
            }
        }
    }
    if (!fd) {
        return explain_open_failure(path, at, parent->name, errno);
    }

    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return fail(ErrorKind::failed,
                    fmt::format("cannot stat lock directory {}: {}", path, errno_text(errno)));
    }
    if (!S_ISDIR(st.st_mode)) {
        return fail(ErrorKind::failed,
                    fmt::format("lock directory {} is not a directory", path),
                    "choose another --lock-dir");
    }
    if (auto safe = check_safe(path, st); !safe) {
        return tl::unexpected(std::move(safe.error()));
    }
    if (::faccessat(fd.get(), ".", X_OK, AT_EACCESS) != 0) {
        return fail(ErrorKind::failed,
                    fmt::format("cannot use lock directory {}: {}", path, errno_text(errno)),
                    other_dir_hint(path));
    }
    return LockDir(path, std::move(fd));
}

namespace {

// A name with-gpu gives its files: claim files, tickets, the decision lock.
bool made_by_with_gpu(std::string_view name) {
    return name == decision_lock_name ||
           (name.starts_with(claim_file_prefix) && name.ends_with(claim_file_suffix)) ||
           (name.starts_with(ticket_file_prefix) && name.ends_with(ticket_file_suffix));
}

} // namespace

void remove_lock_dir(const std::string& path) noexcept {
    try {
        auto dir = LockDir::open(path, false);
        if (!dir) {
            return;
        }
        auto names = detail::list_names(*dir);
        if (!names) {
            return;
        }
        for (const auto& name : *names) {
            if (made_by_with_gpu(name)) {
                ::unlinkat(dir->fd(), name.c_str(), 0); // a directory of that name stays
            }
        }
        ::rmdir(path.c_str()); // fails, harmlessly, if anything else is left in it
    } catch (...) {
        // Best effort (an allocation failure while listing): the directory stays.
    }
}

} // namespace withgpu::lock
