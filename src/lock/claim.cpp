#include "lock/claim.hpp"

#include "lock/lock_file.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <fcntl.h>
#include <limits>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace withgpu::lock {

namespace {

constexpr const char* decision_lock_name = "decide.lock";

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
        return fail(ErrorKind::environment,
                    fmt::format("GPU UUID \"{}\" cannot be used to name a lock file (only "
                                "letters, digits and '-' are accepted)",
                                uuid),
                    "this UUID did not come from a normal NVIDIA driver; report it");
    }
    return {};
}

Error io_error(const std::string& file, const char* call, int err) {
    return Error{ErrorKind::environment,
                 fmt::format("{}({}) failed: {}", call, file, detail::errno_text(err)),
                 {}};
}

template <typename T>
std::optional<T> integer_field(const nlohmann::json& record, const char* key) {
    const auto it = record.find(key);
    if (it == record.end()) {
        return std::nullopt;
    }
    if (it->is_number_unsigned()) {
        const auto value = it->template get<std::uint64_t>();
        if (value <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())) {
            return static_cast<T>(value);
        }
    } else if (it->is_number_integer()) {
        const auto value = it->template get<std::int64_t>();
        if (value >= std::numeric_limits<T>::min() && value <= std::numeric_limits<T>::max()) {
            return static_cast<T>(value);
        }
    }
    return std::nullopt;
}

std::optional<std::string> string_field(const nlohmann::json& record, const char* key) {
    const auto it = record.find(key);
    if (it == record.end() || !it->is_string()) {
        return std::nullopt;
    }
    return it->get<std::string>();
}

// Anyone can write a lock file (mode 0666), so its content is untrusted: anything unexpected
// leaves the field empty and never fails the caller.
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
    holder.pid = integer_field<int>(record, "pid");
    holder.supervisor_pid = integer_field<int>(record, "supervisor_pid");
    holder.user = string_field(record, "user");
    holder.command = string_field(record, "command");
    holder.since_unix = integer_field<std::int64_t>(record, "since");
    holder.slurm_job = string_field(record, "slurm_job");
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
            record["user"] = holder.user->substr(0, 256);
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
    // old record or the new one, never a mix ending in a stale tail.
    if (::ftruncate(fd, static_cast<off_t>(record.size())) != 0) {
        return tl::unexpected(io_error(file, "ftruncate", errno));
    }
    return {};
}

} // namespace

std::string lock_file_name(const std::string& uuid) {
    return "gpu-" + uuid + ".lock";
}

Result<DecisionLock> DecisionLock::acquire(const LockDir& dir, Mode mode) {
    auto opened = detail::open_lock_file(dir, decision_lock_name);
    if (!opened) {
        return tl::unexpected(std::move(opened.error()));
    }
    const int operation = mode == Mode::exclusive ? LOCK_EX : LOCK_SH;
    if (const int err = detail::flock_no_eintr(opened->fd.get(), operation); err != 0) {
        return tl::unexpected(io_error(dir.path() + "/" + decision_lock_name, "flock", err));
    }
    return DecisionLock(std::move(opened->fd));
}

Result<gpu::ClaimMap> read_claims(const LockDir& dir, const std::vector<std::string>& uuids) {
    gpu::ClaimMap claims;
    for (const auto& uuid : uuids) {
        if (auto valid = check_uuid(uuid); !valid) {
            return tl::unexpected(std::move(valid.error()));
        }
        const std::string name = lock_file_name(uuid);
        const std::string file = dir.path() + "/" + name;
        // Never O_CREAT: looking must not leave files behind (or need write access).
        Fd fd(::openat(
            dir.fd(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
        if (!fd) {
            const int err = errno;
            if (err == ENOENT) {
                continue; // never claimed since the directory was created
            }
            if (err == ELOOP) {
                return tl::unexpected(detail::tampered_lock_file(file, "a symbolic link"));
            }
            return tl::unexpected(io_error(file, "open", err));
        }
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) {
            return tl::unexpected(io_error(file, "fstat", errno));
        }
        if (!S_ISREG(st.st_mode)) {
            return tl::unexpected(detail::tampered_lock_file(file, "not a regular file"));
        }
        // A shared probe conflicts with a claimer's LOCK_EX. It cannot make a claimer fail
        // spuriously because claimers take the DecisionLock exclusively and we are called
        // under it (shared or exclusive); closing fd drops the probe.
        const int err = detail::flock_no_eintr(fd.get(), LOCK_SH | LOCK_NB);
        if (err == EWOULDBLOCK) {
            claims.emplace(uuid, read_holder(fd.get()));
        } else if (err != 0) {
            return tl::unexpected(io_error(file, "flock", err));
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

    std::vector<Fd> fds;
    fds.reserve(uuids.size());
    for (const auto& uuid : uuids) {
        const std::string name = lock_file_name(uuid);
        auto opened = detail::open_lock_file(dir, name);
        if (!opened) {
            return tl::unexpected(std::move(opened.error())); // fds close: nothing stays held
        }
        const int err = detail::flock_no_eintr(opened->fd.get(), LOCK_EX | LOCK_NB);
        if (err == EWOULDBLOCK) {
            return std::optional<Claim>(); // all or nothing: fds close, releasing the others
        }
        if (err != 0) {
            return tl::unexpected(io_error(dir.path() + "/" + name, "flock", err));
        }
        if (opened->writable) {
            // The previous holder's record is stale now; until record_holder runs, --status
            // shows an unknown holder rather than a wrong one. Best effort.
            static_cast<void>(::ftruncate(opened->fd.get(), 0));
        }
        fds.push_back(std::move(opened->fd));
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

Result<void> Claim::record_holder(const gpu::ClaimHolder& holder) {
    const std::string record = format_record(holder);
    Result<void> result;
    for (std::size_t i = 0; i < m_fds.size(); ++i) {
        const int flags = ::fcntl(m_fds[i].get(), F_GETFL);
        if (flags < 0 || (flags & O_ACCMODE) != O_RDWR) {
            continue; // opened read-only (another user's 0444 file): no record, still claimed
        }
        auto written = write_record(m_fds[i].get(), record, lock_file_name(m_uuids[i]));
        if (!written && result) {
            result = std::move(written); // report the first failure, still try the others
        }
    }
    return result;
}

} // namespace withgpu::lock
