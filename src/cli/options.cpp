#include "cli/options.hpp"

#include "cli/help.hpp"
#include "config/launch.hpp"
#include "config/settings.hpp"
#include "config/show.hpp"
#include "util/units.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <string>
#include <string_view>

namespace withgpu::cli {

namespace {

constexpr std::string_view k_view_group = "Looking instead of running";
constexpr std::string_view k_slurm_group = "SLURM (docs/slurm.md)";
constexpr std::string_view k_setup_group = "Setup";

// The settings as typed on the command line (config::settings() registers them), keyed by
// setting name. std::map keeps the addresses CLI11 writes to stable.
struct TypedSettings {
    std::map<std::string, std::optional<std::string>> values;
    std::map<std::string, bool> switches; // boolean settings: present or not

    // The configuration layer's command-line source.
    [[nodiscard]] std::map<std::string, std::string> layer() const {
        std::map<std::string, std::string> layer;
        for (const auto& [name, value] : values) {
            if (value) {
                layer.emplace(name, *value);
            }
        }
        for (const auto& [name, set] : switches) {
            if (set) {
                layer.emplace(name, "true");
            }
        }
        return layer;
    }
    [[nodiscard]] bool has(const std::string& name) const {
        const auto value = values.find(name);
        const auto flag = switches.find(name);
        return (value != values.end() && value->second) || (flag != switches.end() && flag->second);
    }
};

// Flags that are not settings: what to do instead of running, and how to say things. Only
// the command line has them.
struct ModeFlags {
    std::optional<std::string> profile;
    std::optional<std::string> watch;
    bool show_config = false;
    bool status = false;
    bool dry_run = false;
    bool slurm_gres_conf = false;
    bool slurm_prolog = false;
    bool slurm_epilog = false;
    bool json = false;
    bool quiet = false;
    bool verbose = false;
    bool version = false;
};

void add_setting_flags(CLI::App& app, TypedSettings& typed) {
    for (const auto& setting : config::settings()) {
        const std::string flag = config::long_flag(setting);
        if (flag.empty()) {
            continue;
        }
        const std::string names =
            setting.short_flag != '\0' ? fmt::format("-{},{}", setting.short_flag, flag) : flag;
        const std::string name(setting.name);
        CLI::Option* option = nullptr;
        if (setting.kind == config::ValueKind::boolean) {
            option = app.add_flag(names, typed.switches[name], config::help_text(setting));
        } else if (!setting.flag_alone.empty()) {
            // A flag with an optional attached value: "--hold" or "--hold=0.5", never eating
            // the next word (the command).
            option = app.add_flag(fmt::format("{}{{{}}}", names, setting.flag_alone),
                                  typed.values[name],
                                  config::help_text(setting))
                         ->type_name(std::string(setting.value_name));
        } else {
            option = app.add_option(names, typed.values[name], config::help_text(setting))
                         ->type_name(std::string(setting.value_name));
        }
        option->group(std::string(setting.group));
    }
}

void add_mode_flags(CLI::App& app, ModeFlags& flags) {
    const std::string view(k_view_group);
    app.add_flag("--status", flags.status, "Show every GPU, its processes and its claim holder")
        ->group(view);
    app.add_option(
           "--watch", flags.watch, "With --status: redraw every INTERVAL (default 2s) until Ctrl-C")
        ->type_name("[INTERVAL]")
        ->expected(0, 1)
        ->group(view);
    app.add_flag("--dry-run", flags.dry_run, "Show what would be chosen and why; run nothing")
        ->group(view);
    app.add_flag("--json", flags.json, "Machine-readable output for --status and --dry-run")
        ->group(view);

    const std::string slurm(k_slurm_group);
    app.add_flag("--slurm-gres-conf",
                 flags.slurm_gres_conf,
                 "Print gres.conf lines for this machine's GPUs and the matching slurm.conf "
                 "NodeName= Gres= line")
        ->group(slurm);
    app.add_flag("--slurm-prolog",
                 flags.slurm_prolog,
                 "For slurmd's Prolog=: claim the job's GPUs for it until the job ends")
        ->group(slurm);
    app.add_flag("--slurm-epilog",
                 flags.slurm_epilog,
                 "For slurmd's Epilog=: release the GPUs claimed by --slurm-prolog")
        ->group(slurm);

    const std::string setup(k_setup_group);
    app.add_flag("-q,--quiet", flags.quiet, "No notes on stderr")->group(setup);
    app.add_flag("-v,--verbose", flags.verbose, "Say which GPUs were chosen and why")->group(setup);
    app.add_option("--profile",
                   flags.profile,
                   "Use the settings of [profiles.NAME] in the configuration files")
        ->type_name("NAME")
        ->group(setup);
    app.add_flag("--show-config",
                 flags.show_config,
                 "Print the effective settings and where each came from, then exit")
        ->group(setup);
    app.add_flag("-V,--version", flags.version, "Print the version and exit")->group(setup);
    app.set_help_flag("-h,--help", "Print this help and exit")->group(setup);
}

// Groups in --help: the settings' groups in table order, the modes' between them.
std::vector<std::string> help_groups() {
    std::vector<std::string> groups;
    for (const auto& setting : config::settings()) {
        const std::string group(setting.group);
        if (!group.empty() && group != k_setup_group &&
            std::find(groups.begin(), groups.end(), group) == groups.end()) {
            groups.push_back(group);
        }
    }
    groups.insert(
        groups.end(),
        {std::string(k_view_group), std::string(k_slurm_group), std::string(k_setup_group)});
    return groups;
}

// Rules between flags that need no configuration to decide.
Result<void> check_flag_combinations(const ModeFlags& flags, const TypedSettings& typed) {
    if (flags.watch && !flags.status) {
        return fail(
            ErrorKind::usage, "--watch is for --status", "e.g. with-gpu --status --watch 1s");
    }
    for (const char* name : {"wait", "timeout"}) {
        if (typed.has(name) && (flags.status || flags.dry_run)) {
            return fail(ErrorKind::usage,
                        fmt::format("--{} is for running a command", name),
                        "--dry-run and --status show the situation now");
        }
    }
    if (flags.status && flags.dry_run) {
        return fail(ErrorKind::usage,
                    "--status and --dry-run cannot be combined",
                    "--status shows every GPU; --dry-run shows what a request would get");
    }
    return {};
}

// What is left after the options: the command (a leading "--" dropped).
Result<std::vector<std::string>> command_of(std::vector<std::string> remaining) {
    if (!remaining.empty() && remaining.front() == "--") {
        remaining.erase(remaining.begin());
    } else if (!remaining.empty() && remaining.front().size() > 1 && remaining.front()[0] == '-') {
        return fail(ErrorKind::usage,
                    fmt::format("unknown option {}", remaining.front()),
                    "see with-gpu --help; put the command after -- if it starts with '-'");
    }
    return remaining;
}

Result<Options::Mode> mode_of(const ModeFlags& flags, const std::vector<std::string>& command) {
    const int slurm_modes = (flags.slurm_gres_conf ? 1 : 0) + (flags.slurm_prolog ? 1 : 0) +
                            (flags.slurm_epilog ? 1 : 0);
    if (slurm_modes > 0) {
        if (slurm_modes > 1 || flags.status || flags.dry_run || flags.json || !command.empty()) {
            return fail(ErrorKind::usage,
                        "--slurm-gres-conf, --slurm-prolog and --slurm-epilog stand alone",
                        "e.g. with-gpu --slurm-gres-conf > gres.conf; see docs/slurm.md");
        }
        return flags.slurm_gres_conf ? Options::Mode::slurm_gres_conf
               : flags.slurm_prolog  ? Options::Mode::slurm_prolog
                                     : Options::Mode::slurm_epilog;
    }
    if (flags.status) {
        if (!command.empty()) {
            return fail(ErrorKind::usage,
                        fmt::format("--status takes no command (got \"{}\")", command[0]),
                        "use with-gpu --status alone, or leave --status out to run the command");
        }
        return Options::Mode::status;
    }
    if (flags.dry_run) {
        return Options::Mode::dry_run;
    }
    if (flags.json) {
        return fail(ErrorKind::usage,
                    "--json is for --status and --dry-run",
                    "e.g. with-gpu --status --json");
    }
    if (command.empty()) {
        return fail(ErrorKind::usage,
                    "no command given",
                    "usage: with-gpu [OPTIONS] [--] COMMAND [ARGS...]; see with-gpu --help");
    }
    return Options::Mode::run;
}

// --watch [INTERVAL] with --status (checked by check_flag_combinations).
Result<std::optional<std::chrono::milliseconds>> watch_interval(const ModeFlags& flags) {
    if (!flags.watch) {
        return std::nullopt;
    }
    if (flags.json) {
        return fail(ErrorKind::usage,
                    "--watch redraws a table; it cannot be combined with --json",
                    "for a stream of JSON, run with-gpu --status --json in a loop");
    }
    auto interval = units::parse_duration(flags.watch->empty() ? "2s" : *flags.watch);
    if (!interval || interval->count() < 100) {
        return fail(ErrorKind::usage,
                    fmt::format("--watch: invalid interval \"{}\"", *flags.watch),
                    "e.g. --watch, --watch 1s, --watch 500ms (at least 100ms)");
    }
    return std::optional<std::chrono::milliseconds>(*interval);
}

Result<Options> options_from(const ModeFlags& flags,
                             std::vector<std::string> command,
                             const config::Settings& settings) {
    Options options;
    auto mode = mode_of(flags, command);
    if (!mode) {
        return tl::unexpected(mode.error());
    }
    auto watch = watch_interval(flags);
    if (!watch) {
        return tl::unexpected(watch.error());
    }
    options.launch = config::launch_from(settings);
    options.mode = *mode;
    options.command = std::move(command);
    options.json = flags.json;
    options.watch = *watch;
    options.quiet = flags.quiet;
    options.verbose = flags.verbose;
    // A configured wait = true or timeout does not apply to --status and --dry-run.
    options.launch.wait = options.mode == Options::Mode::run && options.launch.wait;
    return options;
}

} // namespace

Result<ParseResult> parse(const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& environment,
                          const ConfigFiles& files) {
    TypedSettings typed;
    ModeFlags flags;
    CLI::App app{std::string(help_description()), "with-gpu"};
    app.footer(std::string(help_footer()));
    app.prefix_command(); // everything from the first non-option on is the command
    app.formatter(help_formatter(help_groups()));
    add_setting_flags(app, typed);
    add_mode_flags(app, flags);

    std::vector<std::string> reversed(args.rbegin(), args.rend()); // CLI11 parses a reversed vector
    try {
        app.parse(reversed);
    } catch (const CLI::CallForHelp&) {
        return ParseResult{Information{app.help()}};
    } catch (const CLI::ParseError& e) {
        return fail(ErrorKind::usage, e.what(), "see with-gpu --help");
    }
    if (flags.version) {
        return ParseResult{Information{fmt::format("with-gpu {}\n", WITH_GPU_VERSION)}};
    }
    if (auto checked = check_flag_combinations(flags, typed); !checked) {
        return tl::unexpected(checked.error());
    }
    config::Sources sources;
    sources.system_file = files.system;
    sources.user_file = files.user;
    sources.environment = environment;
    sources.command_line = typed.layer();
    sources.profile = flags.profile;
    auto settings = config::resolve(sources);
    if (!settings) {
        return tl::unexpected(settings.error());
    }
    if (flags.show_config) {
        return ParseResult{Information{config::show(*settings)}};
    }
    auto command = command_of(app.remaining());
    if (!command) {
        return tl::unexpected(command.error());
    }
    auto options = options_from(flags, std::move(*command), *settings);
    if (!options) {
        return tl::unexpected(options.error());
    }
    return ParseResult{std::move(*options)};
}

} // namespace withgpu::cli
