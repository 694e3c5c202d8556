#include "lock/pending_lock.hpp"

#include "lock/lock_file.hpp"
#include "os/errno_text.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <fcntl.h>
#include <mutex>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace withgpu::lock {

struct PendingLock::Shared {
    std::mutex mutex;
    Fd fd;    // the descriptor being locked, until take()
    Fd event; // written by the helper when its flock returned
    bool done = false;
    int error = 0;          // errno of the helper's flock, 0 if it got the lock
    bool abandoned = false; // the PendingLock is gone: give the lock back once granted
};

namespace {

int flock_retrying(int fd, int operation, bool wait) noexcept {
    return detail::flock_no_eintr(fd, wait ? operation : operation | LOCK_NB);
}

int first_byte_shared_retrying(int fd, int /*operation*/, bool wait) noexcept {
    const int err = detail::first_byte_lock(fd, F_RDLCK, wait);
    return err == EAGAIN || err == EACCES ? EWOULDBLOCK : err;
}

// Also for the record lock and the eventfd: the user's question is the same.
Error lock_error(int err) {
    return Error{ErrorKind::failed,
                 fmt::format("locking a file in the lock directory failed: {}", errno_text(err)),
                 "the lock directory must be on a local file system"};
}

// The helper: blocks in flock, then says so. It owns a share of the state, so the descriptor
// outlives an abandoned PendingLock until the lock has been given back.
void wait_in_background(const std::shared_ptr<PendingLock::Shared>& shared,
                        int fd,
                        int (*call)(int fd, int operation, bool wait) noexcept,
                        int operation) {
    const int err = call(fd, operation, true);
    const std::lock_guard<std::mutex> guard(shared->mutex);
    shared->done = true;
    shared->error = err;
    if (shared->abandoned) {
        shared->fd.reset(); // closing the descriptor releases the lock it just got
        return;
    }
    const std::uint64_t one = 1;
    static_cast<void>(!::write(shared->event.get(), &one, sizeof one));
}

} // namespace

Result<PendingLock> PendingLock::start(Fd fd, int operation) {
    return start_with(std::move(fd), flock_retrying, operation);
}

Result<PendingLock> PendingLock::start_first_byte_shared(Fd fd) {
    return start_with(std::move(fd), first_byte_shared_retrying, 0);
}

Result<PendingLock> PendingLock::start_with(Fd fd, LockCall call, int operation) {
    auto shared = std::make_shared<Shared>();
    if (const int err = call(fd.get(), operation, false); err != EWOULDBLOCK) {
        if (err != 0) {
            return tl::unexpected(lock_error(err));
        }
        shared->fd = std::move(fd);
        shared->done = true;
        return PendingLock(std::move(shared));
    }
    shared->event = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!shared->event) {
        return tl::unexpected(lock_error(errno));
    }
    const int raw = fd.get();
    shared->fd = std::move(fd);
    // The helper blocks every signal, so that they keep reaching the thread that waits.
    sigset_t all;
    sigset_t previous;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &previous);
    try {
        std::thread(wait_in_background, shared, raw, call, operation).detach();
    } catch (const std::system_error& e) {
        ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        return fail(ErrorKind::failed, fmt::format("cannot start a thread: {}", e.what()));
    }
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return PendingLock(std::move(shared));
}

PendingLock::PendingLock(PendingLock&&) noexcept = default;
PendingLock& PendingLock::operator=(PendingLock&&) noexcept = default;

PendingLock::~PendingLock() {
    if (!m_shared) {
        return;
    }
    const std::lock_guard<std::mutex> guard(m_shared->mutex);
    if (!m_shared->done) {
        m_shared->abandoned = true;
    }
}

Result<bool> PendingLock::granted() {
    const std::lock_guard<std::mutex> guard(m_shared->mutex);
    if (!m_shared->done) {
        return false;
    }
    if (m_shared->error != 0) {
        return tl::unexpected(lock_error(m_shared->error));
    }
    return true;
}

int PendingLock::ready_fd() const noexcept {
    return m_shared && m_shared->event ? m_shared->event.get() : -1;
}

Fd PendingLock::take() {
    const std::lock_guard<std::mutex> guard(m_shared->mutex);
    return std::move(m_shared->fd);
}

} // namespace withgpu::lock
