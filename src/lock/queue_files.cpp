#include "lock/queue_files.hpp"

#include "lock/lock_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

namespace withgpu::lock {

namespace {

constexpr std::string_view ticket_prefix = "queue-";
constexpr std::string_view ticket_suffix = ".ticket";
constexpr std::size_t max_ticket_bytes = 64 * 1024;
constexpr std::chrono::milliseconds degraded_interval{200};

Error io_error(const LockDir& dir, const std::string& name, const char* call, int err) {
    return Error{
        ErrorKind::environment,
        fmt::format("{}({}/{}) failed: {}", call, dir.path(), name, detail::errno_text(err)),
        "check the lock directory's permissions, or choose another --lock-dir"};
}

// The seq in "queue-<seq>.ticket", or nothing for any other name.
std::optional<std::uint64_t> seq_of(std::string_view name) {
    if (name.size() <= ticket_prefix.size() + ticket_suffix.size() ||
        name.substr(0, ticket_prefix.size()) != ticket_prefix ||
        name.substr(name.size() - ticket_suffix.size()) != ticket_suffix) {
        return std::nullopt;
    }
    const std::string_view digits = name.substr(
        ticket_prefix.size(), name.size() - ticket_prefix.size() - ticket_suffix.size());
    std::uint64_t seq = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
    if (ec != std::errc() || end != digits.data() + digits.size()) {
        return std::nullopt;
    }
    return seq;
}

Result<std::vector<std::pair<std::uint64_t, std::string>>> list_tickets(const LockDir& dir) {
    const int fd = ::openat(dir.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return tl::unexpected(io_error(dir, ".", "open", errno));
    }
    DIR* stream = ::fdopendir(fd);
    if (stream == nullptr) {
        const int err = errno;
        ::close(fd);
        return tl::unexpected(io_error(dir, ".", "fdopendir", err));
    }
    std::vector<std::pair<std::uint64_t, std::string>> tickets;
    while (const dirent* entry = ::readdir(stream)) {
        if (auto seq = seq_of(entry->d_name)) {
            tickets.emplace_back(*seq, entry->d_name);
        }
    }
    ::closedir(stream);
    std::sort(tickets.begin(), tickets.end());
    return tickets;
}

// Opens an existing ticket for reading; an absent one is not an error (nullopt Fd).
Result<Fd> open_ticket(const LockDir& dir, const std::string& name) {
    Fd fd(::openat(
        dir.fd(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd) {
        if (errno == ENOENT) {
            return Fd{};
        }
        if (errno == ELOOP) {
            return tl::unexpected(
                detail::tampered_lock_file(dir.path() + "/" + name, "a symbolic link"));
        }
        return tl::unexpected(io_error(dir, name, "open", errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return tl::unexpected(
            detail::tampered_lock_file(dir.path() + "/" + name, "not a regular file"));
    }
    return fd;
}

} // namespace

std::string ticket_file_name(std::uint64_t seq) {
    return fmt::format("{}{:020}{}", ticket_prefix, seq, ticket_suffix);
}

Result<QueueTicket> QueueTicket::enter(const LockDir& dir,
                                       const std::function<std::string(std::uint64_t)>& text_for) {
    auto tickets = list_tickets(dir);
    if (!tickets) {
        return tl::unexpected(tickets.error());
    }
    const std::uint64_t seq = tickets->empty() ? 1 : tickets->back().first + 1;
    const std::string name = ticket_file_name(seq);
    Fd fd(::openat(dir.fd(),
                   name.c_str(),
                   O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                   0644));
    if (!fd) {
        return tl::unexpected(io_error(dir, name, "create", errno));
    }
    if (const int err = detail::flock_no_eintr(fd.get(), LOCK_EX | LOCK_NB); err != 0) {
        ::unlinkat(dir.fd(), name.c_str(), 0);
        return tl::unexpected(io_error(dir, name, "flock", err));
    }
    QueueTicket ticket(dir.fd(), seq, name, std::move(fd));
    const std::string text = text_for(seq);
    if (::pwrite(ticket.m_fd.get(), text.data(), text.size(), 0) !=
        static_cast<ssize_t>(text.size())) {
        return tl::unexpected(io_error(dir, name, "write", errno)); // the destructor removes it
    }
    return ticket;
}

QueueTicket::QueueTicket(QueueTicket&& other) noexcept
    : m_dir_fd(std::exchange(other.m_dir_fd, -1)), m_seq(other.m_seq),
      m_name(std::move(other.m_name)), m_fd(std::move(other.m_fd)) {}

QueueTicket& QueueTicket::operator=(QueueTicket&& other) noexcept {
    if (this != &other) {
        leave();
        m_dir_fd = std::exchange(other.m_dir_fd, -1);
        m_seq = other.m_seq;
        m_name = std::move(other.m_name);
        m_fd = std::move(other.m_fd);
    }
    return *this;
}

void QueueTicket::leave() noexcept {
    if (m_fd) {
        ::unlinkat(m_dir_fd, m_name.c_str(), 0);
        m_fd.reset();
    }
}

Result<std::vector<TicketRecord>> read_queue(const LockDir& dir) {
    auto tickets = list_tickets(dir);
    if (!tickets) {
        return tl::unexpected(tickets.error());
    }
    std::vector<TicketRecord> live;
    for (const auto& [seq, name] : *tickets) {
        auto fd = open_ticket(dir, name);
        if (!fd) {
            return tl::unexpected(fd.error());
        }
        if (!*fd) {
            continue; // left while we looked
        }
        const int err = detail::flock_no_eintr(fd->get(), LOCK_SH | LOCK_NB);
        if (err == 0) {
            // Unlocked: its waiter died without leaving (kill -9). Sequence numbers are
            // never reused, so removing the file cannot hit anybody else's ticket.
            ::unlinkat(dir.fd(), name.c_str(), 0);
            continue;
        }
        if (err != EWOULDBLOCK) {
            return tl::unexpected(io_error(dir, name, "flock", err));
        }
        std::string text(max_ticket_bytes, '\0');
        const ssize_t n = ::pread(fd->get(), text.data(), text.size(), 0);
        text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        live.push_back({seq, std::move(text)});
    }
    return live;
}

Result<bool> wait_for_ticket(const LockDir& dir, std::uint64_t seq) {
    auto fd = open_ticket(dir, ticket_file_name(seq));
    if (!fd) {
        return tl::unexpected(fd.error());
    }
    if (!*fd) {
        return true;
    }
    // Blocks until the holder's LOCK_EX is gone. EINTR means a signal: let the caller look.
    if (::flock(fd->get(), LOCK_SH) != 0) {
        if (errno == EINTR) {
            return false;
        }
        return tl::unexpected(io_error(dir, ticket_file_name(seq), "flock", errno));
    }
    return true;
}

ReleaseWatch ReleaseWatch::open(const LockDir& dir) {
    Fd fd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!fd) {
        return ReleaseWatch(Fd{});
    }
    // Watch the directory we opened and checked, not whatever the path names now.
    const std::string path = fmt::format("/proc/self/fd/{}", dir.fd());
    if (::inotify_add_watch(fd.get(), path.c_str(), IN_CLOSE_WRITE | IN_DELETE) < 0 &&
        ::inotify_add_watch(fd.get(), dir.path().c_str(), IN_CLOSE_WRITE | IN_DELETE) < 0) {
        return ReleaseWatch(Fd{});
    }
    return ReleaseWatch(std::move(fd));
}

bool ReleaseWatch::wait(std::chrono::milliseconds timeout) {
    using Clock = std::chrono::steady_clock;
    if (!m_fd) {
        const auto nap = std::min(timeout, degraded_interval);
        if (::poll(nullptr, 0, static_cast<int>(nap.count())) < 0) {
            return false;
        }
        return nap == degraded_interval;
    }
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd p{m_fd.get(), POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, left.count())));
        if (ready <= 0) {
            return false; // timeout, or EINTR
        }
        alignas(inotify_event) char buffer[4096];
        bool relevant = false;
        ssize_t n = 0;
        while ((n = ::read(m_fd.get(), buffer, sizeof buffer)) > 0) {
            for (ssize_t offset = 0; offset < n;) {
                const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
                const std::string_view name = event->len > 0 ? event->name : "";
                relevant = relevant || name.substr(0, 4) == "gpu-" ||
                           name.substr(0, ticket_prefix.size()) == ticket_prefix ||
                           (event->mask & IN_Q_OVERFLOW) != 0;
                offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
            }
        }
        if (relevant) {
            return true;
        }
    }
}

} // namespace withgpu::lock
