#include "app/main.hpp"

#include "app/commands.hpp"
#include "app/exit_code.hpp"
#include "cli/options.hpp"
#include "config/paths.hpp"
#include "config/resolve.hpp"
#include "os/errno_text.hpp"
#include "os/fd.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <map>
#include <sys/stat.h>
#include <unistd.h>

extern char** environ; // NOLINT: POSIX

namespace withgpu::app {

std::optional<std::string> ProcessEnvironment::get(std::string_view name) const {
    for (const auto& entry : variables) {
        if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
            entry[name.size()] == '=') {
            return entry.substr(name.size() + 1);
        }
    }
    return std::nullopt;
}

namespace {

// The largest configuration file read (a few hundred lines is a big one).
constexpr std::size_t config_file_limit = std::size_t{1} << 20;

int report(const Error& error) {
    std::string_view message = error.message;
    while (!message.empty() && message.back() == '\n') {
        message.remove_suffix(1);
    }
    fmt::print(stderr, "with-gpu: {}\n", message);
    if (!error.hint.empty()) {
        fmt::print(stderr, "with-gpu: hint: {}\n", error.hint);
    }
    return exit_code(error.kind);
}

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
    // The file may grow while it is read: read one byte past the limit to notice.
    std::string text(config_file_limit + 1, '\0');
    std::size_t size = 0;
    while (size < text.size()) {
        const ssize_t n = ::read(fd.get(), text.data() + size, text.size() - size);
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
    }
    if (size > config_file_limit) {
        return too_large();
    }
    text.resize(size);
    return std::optional<config::ConfigFile>(config::ConfigFile{path, std::move(text)});
}

Result<cli::ConfigFiles> read_config_files(const ProcessEnvironment& env,
                                           const Installation& installation) {
    cli::ConfigFiles files;
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

} // namespace

int main(int argc, char** argv, const Installation& installation) {
    ProcessEnvironment env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        env.variables.emplace_back(*e);
    }
    std::map<std::string, std::string> variables;
    for (const auto& entry : env.variables) {
        const auto eq = entry.find('=');
        if (eq != std::string::npos) {
            variables.emplace(entry.substr(0, eq), entry.substr(eq + 1));
        }
    }
    auto files = read_config_files(env, installation);
    if (!files) {
        return report(files.error());
    }

    std::vector<std::string> args(argv + 1, argv + argc);
    auto parsed = cli::parse(args, variables, *files);
    if (!parsed) {
        return report(parsed.error());
    }
    if (const auto* info = std::get_if<cli::Information>(&*parsed)) {
        fmt::print("{}", info->text);
        return exit_ok;
    }
    const auto& options = std::get<cli::Options>(*parsed);
    auto result = [&] {
        switch (options.mode) {
        case cli::Options::Mode::status:
            return status_command(options, env);
        case cli::Options::Mode::slurm_gres_conf:
            return slurm_gres_conf_command(options);
        case cli::Options::Mode::slurm_prolog:
            return slurm_prolog_command(options, env);
        case cli::Options::Mode::slurm_epilog:
            return slurm_epilog_command(options, env);
        case cli::Options::Mode::run:
        case cli::Options::Mode::dry_run:
            break;
        }
        return run_command(options, env);
    }();
    if (!result) {
        return report(result.error());
    }
    return *result;
}

} // namespace withgpu::app
