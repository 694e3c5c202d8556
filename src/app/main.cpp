#include "app/main.hpp"

#include "app/commands.hpp"
#include "app/exit_code.hpp"
#include "cli/options.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <map>
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

} // namespace

int main(int argc, char** argv) {
    ProcessEnvironment env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        env.variables.emplace_back(*e);
    }
    std::map<std::string, std::string> flag_variables;
    for (const auto& name : cli::environment_variables()) {
        if (auto value = env.get(name)) {
            flag_variables.emplace(name, *value);
        }
    }

    std::vector<std::string> args(argv + 1, argv + argc);
    auto parsed = cli::parse(args, flag_variables);
    if (!parsed) {
        return report(parsed.error());
    }
    if (const auto* info = std::get_if<cli::Information>(&*parsed)) {
        fmt::print("{}", info->text);
        return exit_ok;
    }
    const auto& options = std::get<cli::Options>(*parsed);
    auto result = options.mode == cli::Options::Mode::status ? status_command(options, env)
                                                             : run_command(options, env);
    if (!result) {
        return report(result.error());
    }
    return *result;
}

} // namespace withgpu::app
