#include "lock/lock_file.hpp"

#include "os/errno_text.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace withgpu::lock::detail {

namespace {

constexpr int common_flags = safe_open_flags;

// Bounds the open / create / open-again dance; it only loops if files keep vanishing.
constexpr int max_open_attempts = 16;

Error open_failed(const std::string& file, const char* call, int err) {
    std::string hint;
    if (err == EACCES || err == EPERM) {
        hint = "the lock directory does not let you create or open this file; ask its owner to "
               "make it sticky and world-writable (chmod 1777), or choose another --lock-dir";
    }
    return Error{
        ErrorKind::failed,
        fmt::format("cannot open lock file {}: {} failed: {}", file, call, errno_text(err)),
        hint};
}

struct flock first_byte(short type) {
    struct flock range {};
    range.l_type = type;
    range.l_whence = SEEK_SET;
    range.l_start = 0;
    range.l_len = 1;
    return range;
}

} // namespace

Error tampered_lock_file(const std::string& file, const std::string& what) {
    return Error{ErrorKind::failed,
                 fmt::format("refusing to use lock file {}: it is {}", file, what),
                 "lock files are only ever created as regular files by with-gpu; someone may be "
                 "tampering with the lock directory. Ask an administrator to investigate, or "
                 "choose another --lock-dir"};
}

Result<std::vector<std::string>> list_names(const LockDir& dir) {
    const std::string file = dir.path() + "/.";
    const int fd = ::openat(dir.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return tl::unexpected(open_failed(file, "open", errno));
    }
    DIR* stream = ::fdopendir(fd);
    if (stream == nullptr) {
        const int err = errno;
        ::close(fd);
        return tl::unexpected(open_failed(file, "fdopendir", err));
    }
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(stream)) {
        const std::string_view name = entry->d_name;
        if (name != "." && name != "..") {
            names.emplace_back(name);
        }
    }
    ::closedir(stream);
    return names;
}

int flock_no_eintr(int fd, int operation) noexcept {
    while (::flock(fd, operation) != 0) {
        if (errno != EINTR) {
            return errno;
        }
    }
    return 0;
}

int first_byte_lock(int fd, short type, bool wait) noexcept {
    struct flock range = first_byte(type);
    while (::fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &range) != 0) {
        if (errno != EINTR) {
            return errno;
        }
    }
    return 0;
}

bool first_byte_write_locked(int fd) noexcept {
    struct flock range = first_byte(F_RDLCK); // what would stop a reader
    return ::fcntl(fd, F_OFD_GETLK, &range) == 0 && range.l_type != F_UNLCK;
}

Result<OpenedLockFile> open_lock_file(const LockDir& dir, const std::string& name) {
    const std::string file = dir.path() + "/" + name;
    OpenedLockFile opened;
    for (int attempt = 0; attempt < max_open_attempts && !opened.fd; ++attempt) {
        // 1. Without O_CREAT: fs.protected_regular refuses O_CREAT on another user's file in a
        //    sticky directory even when the file exists.
        opened.fd.reset(::openat(dir.fd(), name.c_str(), O_RDWR | common_flags));
        opened.writable = opened.fd.valid();
        if (opened.fd) {
            break;
        }
        int err = errno;
        if (err == EACCES) {
            // 2. Someone created it without write permission for us: flock works on a
            //    read-only descriptor too; only the holder record is lost.
            opened.fd.reset(::openat(dir.fd(), name.c_str(), O_RDONLY | common_flags));
            if (opened.fd) {
                break;
            }
            err = errno;
        }
        if (err == ELOOP) {
            return tl::unexpected(tampered_lock_file(file, "a symbolic link"));
        }
        if (err == EISDIR) {
            return tl::unexpected(tampered_lock_file(file, "a directory"));
        }
        if (err != ENOENT) {
            return tl::unexpected(open_failed(file, "open", err));
        }
        // 3. Missing: create it exclusively, so we never open something planted meanwhile.
        opened.fd.reset(::openat(
            dir.fd(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | common_flags, mode_t{0666}));
        if (opened.fd) {
            opened.writable = true;
            // The umask must not stop other users from opening the file read-write.
            if (::fchmod(opened.fd.get(), 0666) != 0) {
                return tl::unexpected(open_failed(file, "fchmod", errno));
            }
            break;
        }
        err = errno;
        if (err != EEXIST) {
            return tl::unexpected(open_failed(file, "create", err));
        }
        // 4. EEXIST: another process created it first; open it like an existing one.
    }
    if (!opened.fd) {
        return tl::unexpected(Error{
            ErrorKind::failed,
            fmt::format("cannot open lock file {}: it keeps disappearing and reappearing", file),
            "lock files must never be deleted; check what is removing files in the lock "
            "directory"});
    }
    struct stat st {};
    if (::fstat(opened.fd.get(), &st) != 0) {
        return tl::unexpected(open_failed(file, "fstat", errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return tl::unexpected(tampered_lock_file(file, "not a regular file"));
    }
    return opened;
}

} // namespace withgpu::lock::detail
