#include "lock/queue_files.hpp"

#include "lock/lock_file.hpp"
#include "os/errno_text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace withgpu::lock {

namespace {

constexpr std::size_t ticket_digits = 20; // every uint64_t fits
constexpr std::size_t max_ticket_bytes = std::size_t{64} * 1024;

Error io_error(const LockDir& dir, const std::string& name, const char* call, int err) {
    return Error{ErrorKind::failed,
                 fmt::format("{}({}/{}) failed: {}", call, dir.path(), name, errno_text(err)),
                 "check the lock directory's permissions, or choose another --lock-dir"};
}

// The seq in "queue-<20 digits>.ticket" within [1, max_ticket_seq], or nothing: any other
// name (unpadded, out of range) was not made by with-gpu and is not a ticket at all.
std::optional<std::uint64_t> seq_of(std::string_view name) {
    if (name.size() != ticket_file_prefix.size() + ticket_digits + ticket_file_suffix.size() ||
        !name.starts_with(ticket_file_prefix) || !name.ends_with(ticket_file_suffix)) {
        return std::nullopt;
    }
    const std::string_view digits = name.substr(ticket_file_prefix.size(), ticket_digits);
    std::uint64_t seq = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
    if (ec != std::errc() || end != digits.data() + digits.size() || seq == 0 ||
        seq > max_ticket_seq) {
        return std::nullopt;
    }
    return seq;
}

Result<std::vector<std::pair<std::uint64_t, std::string>>> list_tickets(const LockDir& dir) {
    auto names = detail::list_names(dir);
    if (!names) {
        return tl::unexpected(std::move(names.error()));
    }
    std::vector<std::pair<std::uint64_t, std::string>> tickets;
    for (auto& name : *names) {
        if (auto seq = seq_of(name)) {
            tickets.emplace_back(*seq, std::move(name));
        }
    }
    std::sort(tickets.begin(), tickets.end());
    return tickets;
}

// Opens an existing ticket for reading. An empty Fd: absent, or not a regular file we may
// read (then `why` says what it is): either way not a waiter anyone can honour or wait for.
Fd open_ticket(const LockDir& dir, const std::string& name, std::string* why = nullptr) {
    Fd fd(::openat(dir.fd(), name.c_str(), O_RDONLY | detail::safe_open_flags));
    const int err = errno;
    const auto refuse = [&](const std::string& what) {
        if (why != nullptr) {
            *why = fmt::format("ignoring {}/{}: it is {}; someone may be tampering with the "
                               "lock directory",
                               dir.path(),
                               name,
                               what);
        }
        return Fd{};
    };
    if (!fd) {
        if (err == ENOENT) {
            return Fd{};
        }
        return refuse(err == ELOOP ? std::string("a symbolic link")
                                   : fmt::format("not readable ({})", errno_text(err)));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return refuse("not a regular file");
    }
    return fd;
}

enum class TicketState { gone, live, dead };

// Live: its waiter holds it. Dead: nobody does (the waiter was killed); removed if we may.
TicketState probe_ticket(const LockDir& dir, const std::string& name, int fd) {
    const int err = detail::flock_no_eintr(fd, LOCK_SH | LOCK_NB);
    if (err == EWOULDBLOCK) {
        return TicketState::live;
    }
    if (err == 0) {
        // Unlocked: its waiter died without leaving (kill -9). Sequence numbers are never
        // reused while a ticket file exists, so removing it cannot hit anybody else's. In a
        // sticky directory only its owner (or root) can; otherwise it just stays ignored.
        ::unlinkat(dir.fd(), name.c_str(), 0);
        return TicketState::dead;
    }
    return TicketState::gone;
}

// The awake lock (queue_files.hpp): `type` F_WRLCK takes it, F_UNLCK lets it go. Never waits.
int set_awake_lock(int fd, short type) noexcept {
    return detail::first_byte_lock(fd, type, false);
}

// Writes all of `text` at the start of `fd`; false on failure (errno set).
bool write_all(int fd, const std::string& text) {
    return ::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size());
}

// The ticket `name`, created locked and written; nullopt when the name is taken. Made unnamed
// (O_TMPFILE), locked and written first, then linked in under its name (link fails on a taken
// name): so no reader ever finds a ticket that is not yet locked, even one made by a launch
// that gave up waiting for the decision lock, whose readers would take it for a dead waiter's
// and remove it. Where O_TMPFILE or /proc is missing, it is created under its name and locked
// at once; the decision lock then covers the gap.
Result<std::optional<Fd>>
create_ticket(const LockDir& dir, const std::string& name, const std::string& text, bool awake) {
    Fd unnamed(::openat(dir.fd(), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0644));
    if (unnamed && detail::flock_no_eintr(unnamed.get(), LOCK_EX | LOCK_NB) == 0 &&
        (!awake || set_awake_lock(unnamed.get(), F_WRLCK) == 0) && write_all(unnamed.get(), text)) {
        const std::string path = fmt::format("/proc/self/fd/{}", unnamed.get());
        if (::linkat(AT_FDCWD, path.c_str(), dir.fd(), name.c_str(), AT_SYMLINK_FOLLOW) == 0) {
            return std::optional<Fd>(std::move(unnamed));
        }
        if (errno == EEXIST) {
            return std::optional<Fd>();
        }
    }
    Fd fd(::openat(
        dir.fd(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | detail::safe_open_flags, 0644));
    if (!fd) {
        if (errno == EEXIST) {
            return std::optional<Fd>();
        }
        return tl::unexpected(io_error(dir, name, "create", errno));
    }
    if (const int err = detail::flock_no_eintr(fd.get(), LOCK_EX | LOCK_NB); err != 0) {
        ::unlinkat(dir.fd(), name.c_str(), 0);
        return tl::unexpected(io_error(dir, name, "flock", err));
    }
    if (awake) {
        if (const int err = set_awake_lock(fd.get(), F_WRLCK); err != 0) {
            ::unlinkat(dir.fd(), name.c_str(), 0);
            return tl::unexpected(io_error(dir, name, "fcntl(F_OFD_SETLK)", err));
        }
    }
    if (!write_all(fd.get(), text)) {
        const int err = errno;
        ::unlinkat(dir.fd(), name.c_str(), 0);
        return tl::unexpected(io_error(dir, name, "write", err));
    }
    return std::optional<Fd>(std::move(fd));
}

} // namespace

std::optional<std::uint64_t> next_ticket_seq(const std::vector<std::uint64_t>& live,
                                             const std::vector<std::uint64_t>& present) {
    std::uint64_t next = 1;
    for (const std::uint64_t seq : live) {
        next = std::max(next, seq + 1);
    }
    // Skip names that exist (dead tickets we may not remove): O_EXCL would fail on them.
    std::vector<std::uint64_t> taken(present);
    std::sort(taken.begin(), taken.end());
    for (const std::uint64_t seq : taken) {
        if (seq == next) {
            ++next;
        }
    }
    if (next > max_ticket_seq) {
        return std::nullopt;
    }
    return next;
}

std::string ticket_file_name(std::uint64_t seq) {
    return fmt::format("{}{:020}{}", ticket_file_prefix, seq, ticket_file_suffix);
}

Result<QueueTicket> QueueTicket::enter(const LockDir& dir,
                                       const std::function<std::string(std::uint64_t)>& text_for,
                                       bool tells_when_stopped) {
    auto tickets = list_tickets(dir);
    if (!tickets) {
        return tl::unexpected(tickets.error());
    }
    // The next number is past the newest live ticket: probe from the newest down, so that the
    // exclusive lock is held for one probe, not one per waiter (dead ones on the way are
    // removed; older ones are read_queue's to clear).
    std::vector<std::uint64_t> live;
    std::vector<std::uint64_t> present;
    for (auto it = tickets->rbegin(); it != tickets->rend(); ++it) {
        const Fd fd = open_ticket(dir, it->second);
        if (fd && probe_ticket(dir, it->second, fd.get()) == TicketState::live) {
            live.push_back(it->first);
            break;
        }
    }
    for (const auto& ticket : *tickets) {
        present.push_back(ticket.first); // even when removed: it may be back before we create
    }
    auto seq = next_ticket_seq(live, present);
    // A name taken between the listing and the create (a launch that gave up waiting for the
    // decision lock, or a planted file) is skipped: the next free number is still behind
    // everyone who holds one. Bounded only against a directory filling faster than we count.
    constexpr int max_attempts = 4096;
    for (int attempt = 0; attempt < max_attempts && seq; ++attempt) {
        const std::string name = ticket_file_name(*seq);
        auto created = create_ticket(dir, name, text_for(*seq), tells_when_stopped);
        if (!created) {
            return tl::unexpected(std::move(created.error()));
        }
        if (!*created) {
            seq = *seq < max_ticket_seq ? std::optional<std::uint64_t>(*seq + 1) : std::nullopt;
            continue;
        }
        return QueueTicket(dir.fd(), *seq, name, std::move(**created), tells_when_stopped);
    }
    if (!seq) {
        return fail(ErrorKind::failed,
                    fmt::format("cannot join the queue in {}: a waiter holds a ticket with "
                                "the largest sequence number allowed",
                                dir.path()),
                    "with-gpu never numbers tickets that high; someone is tampering with "
                    "the lock directory (with-gpu --status shows the queue)");
    }
    return fail(
        ErrorKind::failed,
        fmt::format("cannot join the queue in {}: ticket names keep being taken", dir.path()),
        "check what is creating files in the lock directory");
}

QueueTicket::QueueTicket(QueueTicket&& other) noexcept
    : m_dir_fd(std::exchange(other.m_dir_fd, -1)), m_seq(other.m_seq),
      m_name(std::move(other.m_name)), m_fd(std::move(other.m_fd)), m_tells(other.m_tells),
      m_paused(other.m_paused) {}

QueueTicket& QueueTicket::operator=(QueueTicket&& other) noexcept {
    if (this != &other) {
        leave();
        m_dir_fd = std::exchange(other.m_dir_fd, -1);
        m_seq = other.m_seq;
        m_name = std::move(other.m_name);
        m_fd = std::move(other.m_fd);
        m_tells = other.m_tells;
        m_paused = other.m_paused;
    }
    return *this;
}

void QueueTicket::leave() noexcept {
    if (m_fd) {
        ::unlinkat(m_dir_fd, m_name.c_str(), 0);
        m_fd.reset();
    }
}

void QueueTicket::pause() noexcept {
    if (m_fd && m_tells && !m_paused) {
        m_paused = set_awake_lock(m_fd.get(), F_UNLCK) == 0;
    }
}

void QueueTicket::resume() noexcept {
    // Never waits: a waiter behind us that keeps its shared lock (stopped itself, say) must
    // not stall us. Until we have the lock back we are a waiter that cannot tell, and the
    // next resume() tries again.
    if (m_fd && m_paused) {
        m_paused = set_awake_lock(m_fd.get(), F_WRLCK) != 0;
    }
}

namespace {

// Reads one ticket if it is live, into `buffer` (one buffer serves every ticket: 1000 tickets
// used to cost 1000 zeroed 64 KiB strings, docs/benchmarks.md, "Against the floor").
void read_live_ticket(const LockDir& dir,
                      std::uint64_t seq,
                      const std::string& name,
                      std::string& buffer,
                      std::vector<TicketRecord>& live,
                      std::vector<std::string>* notes) {
    std::string why;
    const Fd fd = open_ticket(dir, name, &why);
    if (!fd) {
        if (!why.empty() && notes != nullptr) {
            notes->push_back(std::move(why));
        }
        return; // left while we looked, or not a ticket anyone can honour
    }
    if (probe_ticket(dir, name, fd.get()) != TicketState::live) {
        return;
    }
    if (buffer.empty()) {
        buffer.resize(max_ticket_bytes);
    }
    const ssize_t n = ::pread(fd.get(), buffer.data(), buffer.size(), 0);
    live.push_back({seq, buffer.substr(0, n > 0 ? static_cast<std::size_t>(n) : 0)});
}

} // namespace

Result<std::vector<TicketRecord>> read_queue(const LockDir& dir,
                                             std::vector<std::string>* notes,
                                             std::optional<std::uint64_t> before) {
    auto tickets = list_tickets(dir);
    if (!tickets) {
        return tl::unexpected(tickets.error());
    }
    std::vector<TicketRecord> live;
    std::string buffer;
    for (const auto& [seq, name] : *tickets) {
        if (before && seq >= *before) {
            break; // sorted: the rest came later
        }
        read_live_ticket(dir, seq, name, buffer, live, notes);
    }
    return live;
}

std::vector<TicketRecord> read_tickets(const LockDir& dir,
                                       const std::vector<std::uint64_t>& seqs,
                                       std::vector<std::string>* notes) {
    std::vector<std::uint64_t> sorted(seqs);
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    std::vector<TicketRecord> live;
    std::string buffer;
    for (const std::uint64_t seq : sorted) {
        read_live_ticket(dir, seq, ticket_file_name(seq), buffer, live, notes);
    }
    return live;
}

Result<std::optional<TicketWait>> wait_for_ticket(const LockDir& dir, std::uint64_t seq) {
    // Exactly the file read_queue found live. Anything else (gone, or replaced by something
    // that is not a ticket) has left: the next look will not name it again.
    const std::string name = ticket_file_name(seq);
    Fd fd = open_ticket(dir, name);
    if (!fd) {
        return std::optional<TicketWait>();
    }
    if (detail::first_byte_write_locked(fd.get())) {
        // Its waiter runs and will say when it stops: wait for the awake lock, which it lets
        // go when it leaves, dies or is about to stop.
        auto pending = PendingLock::start_first_byte_shared(std::move(fd));
        if (!pending) {
            return tl::unexpected(std::move(pending.error()));
        }
        auto granted = pending->granted();
        if (!granted) {
            return tl::unexpected(std::move(granted.error()));
        }
        if (!*granted) {
            return std::optional<TicketWait>(TicketWait{std::move(*pending), true});
        }
        // Let go between our two looks: it is stopping, or leaving. Wait as behind a waiter
        // that cannot tell (a descriptor of our own: this one's shared lock would keep the
        // waiter from taking its awake lock back).
        fd = open_ticket(dir, name);
        if (!fd) {
            return std::optional<TicketWait>();
        }
    }
    auto pending = PendingLock::start(std::move(fd), LOCK_SH);
    if (!pending) {
        return tl::unexpected(std::move(pending.error()));
    }
    auto granted = pending->granted();
    if (!granted) {
        return tl::unexpected(std::move(granted.error()));
    }
    if (*granted) {
        return std::optional<TicketWait>(); // not held: its waiter has left (or died)
    }
    return std::optional<TicketWait>(TicketWait{std::move(*pending), false});
}

} // namespace withgpu::lock
