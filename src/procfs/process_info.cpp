#include "procfs/process_info.hpp"

#include "os/fd.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <dirent.h>
#include <fcntl.h>
#include <optional>
#include <pwd.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace withgpu::procfs {

namespace {

// The whole content of a /proc file, or nullopt if it cannot be opened or read.
// /proc files report size 0, so read until EOF instead of trusting fstat.
std::optional<std::string> read_proc_file(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return std::nullopt;
    }
    std::string content;
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return std::nullopt;
        }
        if (n == 0) {
            return content;
        }
        content.append(buffer, static_cast<std::size_t>(n));
    }
}

// The real uid from the "Uid:" line of /proc/<pid>/status ("Uid:\treal\teffective\t...").
std::optional<uid_t> real_uid_from_status(std::string_view status) {
    constexpr std::string_view key = "Uid:";
    std::size_t line_start = 0;
    while (line_start < status.size()) {
        std::size_t line_end = status.find('\n', line_start);
        if (line_end == std::string_view::npos) {
            line_end = status.size();
        }
        const std::string_view line = status.substr(line_start, line_end - line_start);
        if (line.substr(0, key.size()) == key) {
            std::size_t pos = key.size();
            while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) {
                ++pos;
            }
            std::uint64_t value = 0;
            std::size_t digits = 0;
            for (; pos < line.size() && line[pos] >= '0' && line[pos] <= '9'; ++pos, ++digits) {
                value = value * 10 + static_cast<std::uint64_t>(line[pos] - '0');
                if (value > static_cast<std::uint64_t>(static_cast<uid_t>(-1))) {
                    return std::nullopt;
                }
            }
            if (digits == 0) {
                return std::nullopt;
            }
            return static_cast<uid_t>(value);
        }
        line_start = line_end + 1;
    }
    return std::nullopt;
}

// argv from /proc/<pid>/cmdline (NUL-terminated strings) joined by spaces.
std::string join_cmdline(std::string_view raw) {
    while (!raw.empty() && raw.back() == '\0') {
        raw.remove_suffix(1);
    }
    std::string joined(raw);
    for (char& c : joined) {
        if (c == '\0') {
            c = ' ';
        }
    }
    return joined;
}

} // namespace

std::string user_name(uid_t uid) {
    const long suggested = ::sysconf(_SC_GETPW_R_SIZE_MAX);
    std::size_t size = suggested > 0 ? static_cast<std::size_t>(suggested) : 16384;
    // getpwuid_r reports ERANGE when the entry does not fit; grow within reason.
    constexpr std::size_t max_size = std::size_t{1} << 20U;
    for (;;) {
        std::vector<char> buffer(size);
        passwd entry{};
        passwd* found = nullptr;
        const int rc = ::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found);
        if (rc == 0 && found != nullptr && found->pw_name != nullptr) {
            return found->pw_name;
        }
        if (rc == ERANGE && size < max_size) {
            size *= 2;
            continue;
        }
        return fmt::format("{}", uid);
    }
}

ProcessDetails read_process_details(pid_t pid) {
    ProcessDetails details;
    if (pid <= 0) {
        return details;
    }
    const std::string dir = fmt::format("/proc/{}", pid);

    if (const auto status = read_proc_file(dir + "/status")) {
        if (const auto uid = real_uid_from_status(*status)) {
            details.user = user_name(*uid);
        }
    }

    if (const auto cmdline = read_proc_file(dir + "/cmdline")) {
        std::string command = join_cmdline(*cmdline);
        if (!command.empty()) {
            details.command = std::move(command);
        } else if (auto comm = read_proc_file(dir + "/comm")) {
            // Kernel threads and zombies have an empty cmdline; ps shows "[comm]" for them.
            while (!comm->empty() && comm->back() == '\n') {
                comm->pop_back();
            }
            if (!comm->empty()) {
                details.command = "[" + *comm + "]";
            }
        }
    }
    return details;
}

std::vector<FileId> open_files() {
    std::vector<FileId> files;
    DIR* listing = ::opendir("/proc/self/fd");
    if (listing == nullptr) {
        return files;
    }
    const int own = ::dirfd(listing);
    while (const dirent* entry = ::readdir(listing)) {
        const std::string_view name = entry->d_name;
        int fd = -1;
        const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), fd);
        if (error != std::errc() || end != name.data() + name.size() || fd == own) {
            continue; // "." and "..", and the listing's own descriptor
        }
        struct stat info {};
        if (::fstat(fd, &info) == 0) {
            files.push_back({info.st_dev, info.st_ino});
        }
    }
    ::closedir(listing);
    return files;
}

std::optional<char> process_state(pid_t pid) {
    if (pid <= 0) {
        return std::nullopt;
    }
    const auto stat = read_proc_file(fmt::format("/proc/{}/stat", pid));
    // "pid (comm) S ...": comm may contain anything, so look after its last ')'.
    const auto close = stat ? stat->rfind(')') : std::string::npos;
    if (close == std::string::npos || close + 2 >= stat->size()) {
        return std::nullopt;
    }
    return (*stat)[close + 2];
}

std::optional<pid_t> parent_pid(pid_t pid) {
    if (pid <= 0) {
        return std::nullopt;
    }
    const auto stat = read_proc_file(fmt::format("/proc/{}/stat", pid));
    const auto close = stat ? stat->rfind(')') : std::string::npos;
    if (close == std::string::npos || close + 4 >= stat->size()) {
        return std::nullopt;
    }
    // ") S PPID ...": the fourth field.
    const std::string_view rest = std::string_view(*stat).substr(close + 4);
    pid_t parent = 0;
    const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), parent);
    if (error != std::errc() || end == rest.data()) {
        return std::nullopt;
    }
    return parent;
}

bool descends_from(pid_t pid, pid_t ancestor) {
    // A chain longer than this is not a process tree anyone runs; stop rather than loop.
    constexpr int max_depth = 256;
    for (int depth = 0; depth < max_depth && pid > 1; ++depth) {
        if (pid == ancestor) {
            return true;
        }
        const auto parent = parent_pid(pid);
        if (!parent) {
            return false;
        }
        pid = *parent;
    }
    return pid == ancestor;
}

} // namespace withgpu::procfs
