#include "app/main.hpp"

#include "app/commands.hpp"
#include "app/exit_code.hpp"
#include "cli/options.hpp"

#include <fmt/format.h>

#include <cstdio>

namespace withgpu::app {

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

Result<int> dispatch(const cli::Options& options, const core::ProcessEnvironment& env) {
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
}

} // namespace

int main(int argc, char** argv, const core::Installation& installation) {
    const core::ProcessEnvironment env = core::ProcessEnvironment::current();
    auto files = core::read_config_files(env, installation);
    if (!files) {
        return report(files.error());
    }
    const std::vector<std::string> args(argv + 1, argv + argc);
    auto parsed = cli::parse(args, env.as_map(), *files);
    if (!parsed) {
        return report(parsed.error());
    }
    if (const auto* info = std::get_if<cli::Information>(&*parsed)) {
        fmt::print("{}", info->text);
        return exit_ok;
    }
    auto result = dispatch(std::get<cli::Options>(*parsed), env);
    return result ? *result : report(result.error());
}

} // namespace withgpu::app
