#include "lock/claim.hpp"

#include "lock/lock_file.hpp"
#include "os/errno_text.hpp"
#include "util/text.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <fcntl.h>
#include <limits>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace withgpu::lock {

namespace {

// The reader never looks further than this; the writer keeps its record shorter.
constexpr std::size_t max_record_bytes = 4096;

// File names are built from UUIDs that come from the driver (or a simulator, or a user's
// --gpu); refuse anything that could turn into an odd path rather than escaping it.
Result<void> check_uuid(const std::string& uuid) {
    constexpr std::size_t max_uuid_length = 200; // "gpu-" + ".lock" must fit NAME_MAX
    const bool valid_chars = std::all_of(uuid.begin(), uuid.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-';
    });
    if (uuid.empty() || uuid.size() > max_uuid_length || !valid_chars) {
        return fail(ErrorKind::failed,
                    fmt::format("GPU UUID \"{}\" cannot be used to name a lock file (only "
                                "letters, digits and '-' are accepted)",
                                text::printable(uuid)),
                    "this UUID did not come from a normal NVIDIA driver; report it");
    }
    return {};
}

Error io_error(const std::string& file, const char* call, int err) {
    return Error{
        ErrorKind::failed, fmt::format("{}({}) failed: {}", call, file, errno_text(err)), {}};
}

gpu::ClaimHolder read_holder(int fd);

// One entry of the lock directory named like a claim file of a GPU we asked about.
struct ClaimFile {
    std::string uuid;
    unsigned uid = 0; // the user named in the file name
    std::string name;
};

// "gpu-<UUID>.<uid>.lock" with a canonical decimal uid, for one of `uuids`; anything else
// was not made by with-gpu and is none of our business.
std::optional<ClaimFile> parse_claim_name(const std::string& name,
                                          const std::vector<std::string>& uuids) {
    if (name.size() <= claim_file_prefix.size() + claim_file_suffix.size() ||
        !name.starts_with(claim_file_prefix) || !name.ends_with(claim_file_suffix)) {
        return std::nullopt;
    }
    const std::string_view middle = std::string_view(name).substr(
        claim_file_prefix.size(),
        name.size() - claim_file_prefix.size() - claim_file_suffix.size());
    const auto dot = middle.rfind('.');
    if (dot == std::string_view::npos) {
        return std::nullopt;
    }
    const std::string_view uuid = middle.substr(0, dot);
    const std::string_view digits = middle.substr(dot + 1);
    unsigned uid = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), uid);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
        (digits.size() > 1 && digits.front() == '0') ||
        std::find(uuids.begin(), uuids.end(), uuid) == uuids.end()) {
        return std::nullopt;
    }
    return ClaimFile{std::string(uuid), uid, name};
}

std::vector<ClaimFile> claim_files_among(const std::vector<std::string>& names,
                                         const std::vector<std::string>& uuids) {
    std::vector<ClaimFile> files;
    for (const auto& name : names) {
        if (auto file = parse_claim_name(name, uuids)) {
            files.push_back(std::move(*file));
        }
    }
    return files;
}

Result<std::vector<ClaimFile>> list_claim_files(const LockDir& dir,
                                                const std::vector<std::string>& uuids) {
    auto names = detail::list_names(dir);
    if (!names) {
        return tl::unexpected(std::move(names.error()));
    }
    return claim_files_among(*names, uuids);
}

enum class FileState {
    free,    // a claim file nobody holds (or that vanished)
    held,    // claimed, or cannot be told apart from claimed
    ignored, // not a claim file with-gpu could have made: counts for nothing
};

struct Inspection {
    FileState state = FileState::free;
    gpu::ClaimHolder holder;
    std::string note; // for the user, when something is odd
};

const char* file_type_text(mode_t mode) {
    if (S_ISDIR(mode)) {
        return "a directory";
    }
    if (S_ISFIFO(mode)) {
        return "a FIFO";
    }
    if (S_ISLNK(mode)) {
        return "a symbolic link";
    }
    return "not a regular file";
}

// What one claim file says, for a caller running as `me`. Never blocks, never creates.
// Another user's file that with-gpu could not have made is ignored; anything wrong with our
// own file makes its GPU unusable for us (we could not claim it); a file that may be a
// real claim but cannot be probed counts as claimed.
Inspection inspect(const LockDir& dir, const ClaimFile& f, unsigned me) {
    Inspection seen;
    const std::string file = dir.path() + "/" + f.name;
    const bool mine = f.uid == me;
    const auto odd = [&](const std::string& what) {
        seen.state = mine ? FileState::held : FileState::ignored;
        seen.note =
            mine ? fmt::format("GPU {} cannot be claimed: {} is {}; someone may be tampering "
                               "with the lock directory (ask an administrator to remove it)",
                               f.uuid,
                               file,
                               what)
                 : fmt::format("ignoring {}: it is {}, so it is no claim (with-gpu makes only "
                               "regular files owned by the user they name)",
                               file,
                               what);
        return seen;
    };
    Fd fd(::openat(dir.fd(), f.name.c_str(), O_RDONLY | detail::safe_open_flags));
    if (!fd) {
        const int err = errno;
        if (err == ENOENT) {
            return seen;
        }
        if (err == ELOOP) {
            return odd("a symbolic link");
        }
        struct stat st {};
        if (::fstatat(dir.fd(), f.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && st.st_uid == f.uid) {
            // Possibly a real claim that we may not look at (its owner removed our read
            // permission): assume the worst.
            seen.state = FileState::held;
            seen.note = fmt::format("cannot tell whether GPU {} is claimed ({} cannot be read: "
                                    "{}); it counts as claimed",
                                    f.uuid,
                                    file,
                                    errno_text(err));
            return seen;
        }
        return odd(fmt::format("not readable ({})", errno_text(err)));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return odd(fmt::format("not inspectable ({})", errno_text(errno)));
    }
    if (!S_ISREG(st.st_mode)) {
        return odd(file_type_text(st.st_mode));
    }
    if (st.st_uid != f.uid) {
        return odd(fmt::format("owned by uid {}", st.st_uid));
    }
    // A shared probe conflicts with a claimer's LOCK_EX. It cannot make a claimer fail
    // spuriously because claimers take the DecisionLock exclusively and we are called
    // under it (shared or exclusive); closing fd drops the probe.
    const int err = detail::flock_no_eintr(fd.get(), LOCK_SH | LOCK_NB);
    if (err == EWOULDBLOCK) {
        seen.state = FileState::held;
        seen.holder = read_holder(fd.get());
    } else if (err != 0) {
        seen.state = FileState::held;
        seen.note = fmt::format("cannot tell whether GPU {} is claimed (flock({}) failed: {}); "
                                "it counts as claimed",
                                f.uuid,
                                file,
                                errno_text(err));
    }
    return seen;
}

// Opens (creating it if missing, mode 0644) and locks our own claim file `name`, making sure
// that what we locked is what the name leads to. An empty Fd: someone (one of our own
// processes) holds it.
Result<Fd> lock_own_file(const LockDir& dir, const std::string& name, unsigned me) {
    const std::string file = dir.path() + "/" + name;
    constexpr int max_attempts = 16; // only loops while the file keeps being replaced
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
        Fd fd(::openat(dir.fd(), name.c_str(), O_RDWR | detail::safe_open_flags));
        if (!fd) {
            const int err = errno;
            if (err == ELOOP) {
                return tl::unexpected(detail::tampered_lock_file(file, "a symbolic link"));
            }
            if (err == EISDIR) {
                return tl::unexpected(detail::tampered_lock_file(file, "a directory"));
            }
            if (err != ENOENT) {
                return tl::unexpected(io_error(file, "open", err));
            }
            // Missing: create it exclusively, so we never open something planted meanwhile.
            fd.reset(::openat(dir.fd(),
                              name.c_str(),
                              O_RDWR | O_CREAT | O_EXCL | detail::safe_open_flags,
                              mode_t{0644}));
            if (!fd) {
                if (errno == EEXIST) {
                    continue; // someone was quicker: look at what is there now
                }
                return tl::unexpected(io_error(file, "create", errno));
            }
        }
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) {
            return tl::unexpected(io_error(file, "fstat", errno));
        }
        if (!S_ISREG(st.st_mode)) {
            return tl::unexpected(detail::tampered_lock_file(file, file_type_text(st.st_mode)));
        }
        if (st.st_uid != me) {
            // Its owner could delete it while we hold it, and lock a fresh one.
            return tl::unexpected(detail::tampered_lock_file(
                file, fmt::format("owned by another user (uid {})", st.st_uid)));
        }
        if ((st.st_mode & 07777) != 0644) {
            // Everyone must be able to probe it (the umask may have removed bits).
            static_cast<void>(::fchmod(fd.get(), 0644));
        }
        const int err = detail::flock_no_eintr(fd.get(), LOCK_EX | LOCK_NB);
        if (err == EWOULDBLOCK) {
            return Fd{};
        }
        if (err != 0) {
            return tl::unexpected(io_error(file, "flock", err));
        }
        // Only we (and root) can unlink it, but check that the name still leads to the file
        // we locked: a lock on an unlinked file would be seen by nobody.
        struct stat now {};
        if (::fstatat(dir.fd(), name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 &&
            now.st_dev == st.st_dev && now.st_ino == st.st_ino) {
            return fd;
        }
    }
    return tl::unexpected(
        Error{ErrorKind::failed,
              fmt::format("cannot claim with lock file {}: it keeps being replaced", file),
              "claim files must never be deleted; check what is removing files in the lock "
              "directory"});
}

// The ranges a record written by with-gpu can have; anything else is forged or corrupt.
constexpr std::int64_t max_pid = 4194304;        // PID_MAX_LIMIT on 64-bit Linux
constexpr std::int64_t max_since = 253402300799; // 9999-12-31T23:59:59Z
constexpr std::size_t max_user_bytes = 256;

std::optional<std::int64_t>
integer_field(const nlohmann::json& record, const char* key, std::int64_t min, std::int64_t max) {
    const auto it = record.find(key);
    if (it == record.end() || !it->is_number_integer()) {
        return std::nullopt;
    }
    if (it->is_number_unsigned()) {
        const auto value = it->get<std::uint64_t>();
        if (value > static_cast<std::uint64_t>(max)) {
            return std::nullopt;
        }
        return static_cast<std::int64_t>(value) >= min
                   ? std::optional<std::int64_t>(static_cast<std::int64_t>(value))
                   : std::nullopt;
    }
    const auto value = it->get<std::int64_t>();
    if (value < min || value > max) {
        return std::nullopt;
    }
    return value;
}

std::optional<int> pid_field(const nlohmann::json& record, const char* key) {
    const auto value = integer_field(record, key, 1, max_pid);
    return value ? std::optional<int>(static_cast<int>(*value)) : std::nullopt;
}

std::optional<std::string>
string_field(const nlohmann::json& record, const char* key, std::size_t max_bytes) {
    const auto it = record.find(key);
    if (it == record.end() || !it->is_string() || it->get_ref<const std::string&>().empty() ||
        it->get_ref<const std::string&>().size() > max_bytes) {
        return std::nullopt;
    }
    return it->get<std::string>();
}

// A claim file can be written by its owner with anything, so its content is untrusted:
// anything unexpected or out of range leaves the field empty and never fails the caller.
gpu::ClaimHolder parse_holder(std::string_view text) {
    const auto newline = text.find('\n');
    if (newline == std::string_view::npos) {
        return {}; // empty, being written, or not ours
    }
    const auto record = nlohmann::json::parse(text.substr(0, newline), nullptr, false);
    if (!record.is_object()) {
        return {};
    }
    gpu::ClaimHolder holder;
    holder.pid = pid_field(record, "pid");
    holder.supervisor_pid = pid_field(record, "supervisor_pid");
    holder.user = string_field(record, "user", max_user_bytes);
    holder.command = string_field(record, "command", max_record_bytes);
    holder.since_unix = integer_field(record, "since", 1, max_since);
    holder.slurm_job = string_field(record, "slurm_job", max_user_bytes);
    if (const auto bytes = record.find("hold_bytes");
        bytes != record.end() && bytes->is_number_unsigned()) {
        holder.hold_bytes = bytes->get<std::uint64_t>();
        holder.hold_since_unix = integer_field(record, "hold_since", 1, max_since);
    }
    if (const auto misplaced = record.find("misplaced");
        misplaced != record.end() && misplaced->is_array()) {
        for (const auto& item : *misplaced) {
            if (item.is_string() && holder.misplaced.size() < 64) {
                holder.misplaced.push_back(item.get<std::string>().substr(0, 32));
            }
        }
    }
    return holder;
}

gpu::ClaimHolder read_holder(int fd) {
    std::array<char, max_record_bytes> buffer{};
    std::size_t size = 0;
    while (size < buffer.size()) {
        const ssize_t n =
            ::pread(fd, buffer.data() + size, buffer.size() - size, static_cast<off_t>(size));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        size += static_cast<std::size_t>(n);
    }
    return parse_holder(std::string_view(buffer.data(), size));
}

// One line of JSON, never longer than the reader reads: the command is shortened if needed.
std::string format_record(const gpu::ClaimHolder& holder) {
    std::string command = holder.command.value_or("");
    for (;;) {
        nlohmann::json record = nlohmann::json::object();
        if (holder.pid) {
            record["pid"] = *holder.pid;
        }
        if (holder.supervisor_pid) {
            record["supervisor_pid"] = *holder.supervisor_pid;
        }
        if (holder.user) {
            record["user"] = holder.user->substr(0, max_user_bytes);
        }
        if (holder.command) {
            record["command"] = command;
        }
        if (holder.since_unix) {
            record["since"] = *holder.since_unix;
        }
        if (holder.slurm_job) {
            record["slurm_job"] = holder.slurm_job->substr(0, 64);
        }
        if (holder.hold_bytes) {
            record["hold_bytes"] = *holder.hold_bytes;
            if (holder.hold_since_unix) {
                record["hold_since"] = *holder.hold_since_unix;
            }
        }
        if (!holder.misplaced.empty()) {
            record["misplaced"] = holder.misplaced;
        }
        // argv and user names are bytes, not necessarily UTF-8: replace, never throw.
        std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        line += '\n';
        if (line.size() < max_record_bytes || command.empty()) {
            return line;
        }
        command.resize(command.size() / 2);
    }
}

Result<void> write_record(int fd, const std::string& record, const std::string& file) {
    std::size_t written = 0;
    while (written < record.size()) {
        const ssize_t n = ::pwrite(
            fd, record.data() + written, record.size() - written, static_cast<off_t>(written));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return tl::unexpected(io_error(file, "pwrite", errno));
        }
        written += static_cast<std::size_t>(n);
    }
    // Written first, cut after: a reader stops at the first newline, so it sees either the
    // old record or the new one, never a mix ending in a stale tail. Cut only what is longer.
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size <= static_cast<off_t>(record.size())) {
        return {};
    }
    if (::ftruncate(fd, static_cast<off_t>(record.size())) != 0) {
        return tl::unexpected(io_error(file, "ftruncate", errno));
    }
    return {};
}

} // namespace

gpu::ClaimHolder parse_claim_record(std::string_view text) {
    return parse_holder(text);
}

std::string format_claim_record(const gpu::ClaimHolder& holder) {
    return format_record(holder);
}

std::string lock_file_name(const std::string& uuid, unsigned uid) {
    return fmt::format("{}{}.{}{}", claim_file_prefix, uuid, uid, claim_file_suffix);
}

Result<DecisionLock> DecisionLock::start(const LockDir& dir, Mode mode, bool create) {
    const std::string file = dir.path() + "/" + decision_lock_name;
    std::string note;
    if (!create) {
        // Looking only: never create it, and never block on a planted FIFO.
        Fd fd(::openat(dir.fd(), decision_lock_name, O_RDONLY | detail::safe_open_flags));
        if (!fd && errno == ENOENT) {
            return DecisionLock(Fd{}, {}); // nobody ever decided here: nothing to wait for
        }
        if (fd) {
            struct stat st {};
            if (::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode)) {
                return taking(std::move(fd), LOCK_SH);
            }
            note = fmt::format("ignoring {}: it is not a regular file", file);
        } else {
            note = fmt::format("ignoring {}: {}", file, errno_text(errno));
        }
        return DecisionLock(Fd{}, std::move(note));
    }
    auto opened = detail::open_lock_file(dir, decision_lock_name);
    if (!opened) {
        if (opened.error().kind != ErrorKind::failed) {
            return tl::unexpected(std::move(opened.error()));
        }
        // Exclusion does not depend on this lock, so a planted decide.lock costs fairness
        // (decisions are no longer serialised), never a wrong claim: go on without it.
        return DecisionLock(
            Fd{}, fmt::format("deciding without the decision lock: {}", opened.error().message));
    }
    return taking(std::move(opened->fd), mode == Mode::exclusive ? LOCK_EX : LOCK_SH);
}

Result<DecisionLock> DecisionLock::taking(Fd fd, int operation) {
    auto pending = PendingLock::start(std::move(fd), operation);
    if (!pending) {
        return tl::unexpected(std::move(pending.error()));
    }
    DecisionLock lock(Fd{}, {});
    lock.m_pending.emplace(std::move(*pending));
    if (auto held = lock.finish(); !held) {
        return tl::unexpected(std::move(held.error()));
    }
    return lock;
}

Result<DecisionLock> DecisionLock::acquire(const LockDir& dir, Mode mode, bool create) {
    auto lock = start(dir, mode, create);
    while (lock && lock->pending()) {
        pollfd ready{lock->ready_fd(), POLLIN, 0};
        static_cast<void>(::poll(&ready, 1, -1));
        if (auto held = lock->finish(); !held) {
            return tl::unexpected(std::move(held.error()));
        }
    }
    return lock;
}

Result<bool> DecisionLock::finish() {
    if (!m_pending) {
        return true;
    }
    auto granted = m_pending->granted();
    if (!granted) {
        return tl::unexpected(std::move(granted.error()));
    }
    if (*granted) {
        m_fd = m_pending->take();
        m_pending.reset();
    }
    return *granted;
}

void DecisionLock::give_up(std::string why) {
    m_pending.reset(); // the waiting thread gives the lock back when it gets it
    m_fd.reset();
    m_note = std::move(why);
}

Result<const std::vector<std::string>*> ClaimListing::names(const LockDir& dir) {
    // Before listing: what appears after this is reported next time.
    const bool added = m_watch == nullptr || m_watch->take_names_added();
    if (m_names && !added) {
        return &*m_names;
    }
    auto listed = detail::list_names(dir);
    if (!listed) {
        return tl::unexpected(std::move(listed.error()));
    }
    ++m_listings;
    std::erase_if(*listed,
                  [](const std::string& name) { return !name.starts_with(claim_file_prefix); });
    m_names = std::move(*listed);
    return &*m_names;
}

Result<gpu::ClaimMap> read_claims(const LockDir& dir,
                                  const std::vector<std::string>& uuids,
                                  std::vector<std::string>* notes) {
    ClaimListing listing;
    return read_claims(dir, uuids, listing, notes);
}

Result<gpu::ClaimMap> read_claims(const LockDir& dir,
                                  const std::vector<std::string>& uuids,
                                  ClaimListing& listing,
                                  std::vector<std::string>* notes) {
    for (const auto& uuid : uuids) {
        if (auto valid = check_uuid(uuid); !valid) {
            return tl::unexpected(std::move(valid.error()));
        }
    }
    auto names = listing.names(dir);
    if (!names) {
        return tl::unexpected(std::move(names.error()));
    }
    const auto me = static_cast<unsigned>(::geteuid());
    gpu::ClaimMap claims;
    for (const auto& f : claim_files_among(**names, uuids)) {
        auto seen = inspect(dir, f, me);
        if (!seen.note.empty() && notes != nullptr) {
            notes->push_back(std::move(seen.note));
        }
        if (seen.state == FileState::held && claims.count(f.uuid) == 0) {
            seen.holder.file_uid = f.uid;
            claims.emplace(f.uuid, seen.holder);
        }
    }
    return claims;
}

Result<std::optional<Claim>> Claim::try_acquire(const LockDir& dir,
                                                std::vector<std::string> uuids) {
    for (const auto& uuid : uuids) {
        if (auto valid = check_uuid(uuid); !valid) {
            return tl::unexpected(std::move(valid.error()));
        }
    }
    // One global order means two claimers of overlapping sets cannot each hold what the
    // other needs; duplicates would conflict with ourselves (flock is per open file).
    std::sort(uuids.begin(), uuids.end());
    uuids.erase(std::unique(uuids.begin(), uuids.end()), uuids.end());

    const auto me = static_cast<unsigned>(::geteuid());
    std::vector<Fd> fds;
    fds.reserve(uuids.size());
    // 1. Our own claim files: only we (and root) can delete or replace them.
    for (const auto& uuid : uuids) {
        auto locked = lock_own_file(dir, lock_file_name(uuid, me), me);
        if (!locked) {
            return tl::unexpected(std::move(locked.error())); // fds close: nothing stays held
        }
        if (!*locked) {
            return std::optional<Claim>(); // all or nothing: fds close, releasing the others
        }
        // The previous holder's record is stale now; until record_holder runs, --status
        // shows an unknown holder rather than a wrong one: an empty first line (readers stop
        // at the first newline). Not ftruncate(0): ext4 writes back a file truncated to zero
        // when it is closed (auto_da_alloc), a disk write per launch. Best effort.
        static_cast<void>(::pwrite(locked->get(), "\n", 1, 0));
        fds.push_back(std::move(*locked));
    }
    // 2. Everyone else's claim files of the same GPUs, listed only now that ours are locked:
    //    a claimer that creates its file after this listing will find ours locked.
    auto files = list_claim_files(dir, uuids);
    if (!files) {
        return tl::unexpected(std::move(files.error()));
    }
    for (const auto& f : *files) {
        if (f.uid == me) {
            continue;
        }
        if (inspect(dir, f, me).state == FileState::held) {
            return std::optional<Claim>(); // claimed (or cannot be told apart from claimed)
        }
    }
    return std::optional<Claim>(Claim(std::move(uuids), std::move(fds)));
}

std::vector<int> Claim::descriptors() const {
    std::vector<int> result;
    result.reserve(m_fds.size());
    for (const auto& fd : m_fds) {
        result.push_back(fd.get());
    }
    return result;
}

Result<void> Claim::record_holder(const std::string& uuid, const gpu::ClaimHolder& holder) {
    const auto me = static_cast<unsigned>(::geteuid());
    for (std::size_t i = 0; i < m_fds.size(); ++i) {
        if (m_uuids[i] == uuid) {
            return write_record(m_fds[i].get(), format_record(holder), lock_file_name(uuid, me));
        }
    }
    return {};
}

Result<void> Claim::record_holder(const gpu::ClaimHolder& holder) {
    const std::string record = format_record(holder);
    Result<void> result;
    const auto me = static_cast<unsigned>(::geteuid());
    for (std::size_t i = 0; i < m_fds.size(); ++i) {
        auto written = write_record(m_fds[i].get(), record, lock_file_name(m_uuids[i], me));
        if (!written && result) {
            result = std::move(written); // report the first failure, still try the others
        }
    }
    return result;
}

} // namespace withgpu::lock
