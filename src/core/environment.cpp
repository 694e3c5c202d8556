#include "core/environment.hpp"

#include "os/errno_text.hpp"
#include "os/fd.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

extern char** environ; // NOLINT: POSIX

namespace withgpu::core {

std::optional<std::string> ProcessEnvironment::get(std::string_view name) const {
    for (const auto& entry : variables) {
        if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
            entry[name.size()] == '=') {
            return entry.substr(name.size() + 1);
        }
    }
    return std::nullopt;
}

std::map<std::string, std::string> ProcessEnvironment::as_map() const {
    std::map<std::string, std::string> map;
    for (const auto& entry : variables) {
        const auto eq = entry.find('=');
        if (eq != std::string::npos) {
            map.emplace(entry.substr(0, eq), entry.substr(eq + 1));
        }
    }
    return map;
}

ProcessEnvironment ProcessEnvironment::current() {
    ProcessEnvironment env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        env.variables.emplace_back(*e);
    }
    return env;
}

namespace {

// The largest configuration file read (a few hundred lines is a big one).
constexpr std::size_t config_file_limit = std::size_t{1} << 20;

// A configuration file's text, or nothing when it does not exist. Only a regular file of at
// most config_file_limit bytes is read: a FIFO, a device (/dev/zero) or a directory is an
// error, and opening never blocks (O_NONBLOCK: a FIFO without a writer).
Result<std::optional<config::ConfigFile>> read_config_file(const std::string& path) {
    const auto cannot_read = [&](const std::string& why) {
        return fail(ErrorKind::usage,
                    fmt::format("cannot read configuration file {}: {}", path, why),
                    "make it a readable regular file, or remove it");
    };
    const Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!fd) {
        const int error = errno;
        if (error == ENOENT || error == ENOTDIR) {
            return std::optional<config::ConfigFile>{};
        }
        return cannot_read(errno_text(error));
    }
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) {
        return cannot_read(errno_text(errno));
    }
    if (S_ISDIR(info.st_mode)) {
        return cannot_read("it is a directory");
    }
    if (!S_ISREG(info.st_mode)) {
        return cannot_read("it is not a regular file");
    }
    const auto too_large = [&] {
        return cannot_read(
            fmt::format("it is larger than {} KiB, the limit", config_file_limit / 1024));
    };
    if (info.st_size > static_cast<off_t>(config_file_limit)) {
        return too_large();
    }
    // Sized for what the file holds (a launch reads both files), plus one byte to notice a
    // file that grows while it is read; never more than one byte past the limit.
    std::string text;
    std::size_t size = 0;
    std::size_t capacity = static_cast<std::size_t>(info.st_size) + 1;
    for (;;) {
        text.resize(capacity);
        const ssize_t n = ::read(fd.get(), text.data() + size, capacity - size);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return cannot_read(errno_text(errno));
        }
        if (n == 0) {
            break;
        }
        size += static_cast<std::size_t>(n);
        if (size > config_file_limit) {
            return too_large();
        }
        if (size == capacity) {
            capacity = std::min(capacity * 2, config_file_limit + 1);
        }
    }
    text.resize(size);
    return std::optional<config::ConfigFile>(config::ConfigFile{path, std::move(text)});
}

} // namespace

Result<config::Files> read_config_files(const ProcessEnvironment& env,
                                        const Installation& installation) {
    config::Files files;
    auto system = read_config_file(installation.system_config);
    if (!system) {
        return tl::unexpected(system.error());
    }
    files.system = std::move(*system);
    if (auto user_path = config::user_config_path(env.get("XDG_CONFIG_HOME").value_or(""),
                                                  env.get("HOME").value_or(""))) {
        auto user = read_config_file(*user_path);
        if (!user) {
            return tl::unexpected(user.error());
        }
        files.user = std::move(*user);
    }
    return files;
}

} // namespace withgpu::core
