#include "app/main.hpp"

#include "app/commands.hpp"
#include "app/exit_code.hpp"
#include "cli/options.hpp"
#include "config/config.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
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

// A configuration file's text, or nothing when it does not exist.
Result<std::optional<config::ConfigFile>> read_config_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT || errno == ENOTDIR) {
            return std::optional<config::ConfigFile>{};
        }
        return fail(
            ErrorKind::usage,
            fmt::format("cannot read configuration file {}: {}", path, std::strerror(errno)),
            "fix its permissions, or remove it");
    }
    std::ostringstream text;
    text << in.rdbuf();
    return std::optional<config::ConfigFile>(config::ConfigFile{path, text.str()});
}

Result<cli::ConfigFiles> read_config_files(const ProcessEnvironment& env) {
    cli::ConfigFiles files;
    // WITH_GPU_SYSTEM_CONFIG replaces the system file's path (for tests and unusual installs).
    auto system =
        read_config_file(env.get("WITH_GPU_SYSTEM_CONFIG").value_or(config::system_config_path()));
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

int main(int argc, char** argv) {
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
    auto files = read_config_files(env);
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
