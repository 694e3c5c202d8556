#include "cli/options.hpp"

#include "gpu/claim.hpp"
#include "selection/gpu_ref.hpp"
#include "util/units.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>

namespace withgpu::cli {

namespace {

constexpr std::string_view k_description =
    "Usage: with-gpu [OPTIONS] [--] COMMAND [ARGS...]\n"
    "       with-gpu --status [--json | --watch [INTERVAL]]\n"
    "       with-gpu --dry-run [--json] [OPTIONS]\n"
    "       with-gpu --slurm-gres-conf | --slurm-prolog | --slurm-epilog\n"
    "\n"
    "Run a command on GPUs that are really free, claimed so that no other with-gpu job\n"
    "can take them.";

constexpr std::string_view k_examples = R"(Examples:
  Run on the best free GPU (most free memory, fewest processes):
    with-gpu python train.py
  Two GPUs with at least 20 GiB free each and at most 10% utilisation:
    with-gpu -n 2 --min-memory 20G --max-util 10 python train.py
  Only idle A100s, never GPU 0:
    with-gpu --gpu-type A100 --strict --require-idle --exclude 0 ./run.sh
  As many GPUs as are free, between 2 and 4:
    with-gpu --min-gpus 2 --max-gpus 4 torchrun train.py
  Pass options to the command after --:
    with-gpu -- python -m pip list
  Wait in line until two GPUs are free, for at most 2 hours:
    with-gpu --wait --timeout 2h -n 2 python train.py
  Use a profile from your configuration file:
    with-gpu --profile llm python serve.py
  See who uses which GPU, or why a request would not be met:
    with-gpu --status
    with-gpu --dry-run -n 2 --min-memory 40G

The command gets CUDA_VISIBLE_DEVICES (NVML indices), CUDA_DEVICE_ORDER=PCI_BUS_ID and
WITH_GPU_UUIDS. An inherited CUDA_VISIBLE_DEVICES limits the candidates. Inside a SLURM
job or step only its GPUs (SLURM_STEP_GPUS / SLURM_JOB_GPUS) are used, under SLURM's ids.

Exit status: the command's own (death by signal S is passed on); 2 usage error; 75 no
suitable GPU is free now; 124 --timeout expired; 125 with-gpu failed (no NVIDIA driver,
unsafe lock directory, a request that can never be met); 126 command not executable;
127 command not found.

Settings come from /etc/with-gpu/config.toml, then ~/.config/with-gpu/config.toml
([defaults] and [profiles.NAME]), then WITH_GPU_* variables (WITH_GPU_MIN_MEMORY,
WITH_GPU_LOCK_DIR, ...), then flags. See the effective ones with --show-config.)";

// Breaks `text` into lines of at most `columns` characters, at spaces only.
std::string wrap(std::string_view text, std::size_t columns) {
    std::string wrapped;
    std::size_t line_length = 0;
    while (!text.empty()) {
        const std::size_t end = std::min(text.find(' '), text.size());
        const std::string_view word = text.substr(0, end);
        text.remove_prefix(std::min(end + 1, text.size()));
        if (word.empty()) {
            continue;
        }
        if (line_length > 0 && line_length + 1 + word.size() > columns) {
            wrapped += '\n';
            line_length = 0;
        } else if (line_length > 0) {
            wrapped += ' ';
            ++line_length;
        }
        wrapped += word;
        line_length += word.size();
    }
    return wrapped;
}

// Refills each paragraph of prose (lines that are not indented, up to a blank or an indented
// line) to `columns`; indented lines (usage, examples) and blank lines stay as they are.
std::string reflow(std::string_view text, std::size_t columns) {
    std::string out;
    std::string paragraph;
    const auto flush = [&] {
        if (!paragraph.empty()) {
            out += wrap(paragraph, columns) + '\n';
            paragraph.clear();
        }
    };
    while (!text.empty()) {
        const std::size_t end = std::min(text.find('\n'), text.size());
        const std::string_view line = text.substr(0, end);
        text.remove_prefix(std::min(end + 1, text.size()));
        if (line.empty() || line.front() == ' ') {
            flush();
            out += std::string(line) + '\n';
        } else {
            paragraph += (paragraph.empty() ? "" : " ") + std::string(line);
        }
    }
    flush();
    return out;
}

// --help as one text of at most 80 columns: the description (usage lines included), the
// option groups in the order of their first option, one blank line apart, and the footer.
// (CLI11's own layout adds a second usage line, an "Options:" group for --help, and blank
// lines after every group.)
class HelpFormatter final : public CLI::Formatter {
  public:
    static constexpr std::size_t width = 80;

    std::string make_help(const CLI::App* app,
                          std::string /*name*/,
                          CLI::AppFormatMode /*mode*/) const override {
        std::string text = reflow(app->get_description(), width);
        for (const std::string& group : app->get_groups()) {
            const auto options = app->get_options([&group](const CLI::Option* option) {
                return option->get_group() == group && option->nonpositional();
            });
            if (!group.empty() && !options.empty()) {
                text += make_group(group, false, options); // "\nGROUP:\n" and one line each
            }
        }
        return text + "\n" + reflow(app->get_footer(), width);
    }

    // CLI11 indents the lines after each '\n' of a description to the description column.
    std::string make_option_desc(const CLI::Option* option) const override {
        return wrap(option->get_description(), width - get_column_width());
    }
};

// Values exactly as typed, converted by our own parsers so that every error names the flag
// and says what is accepted.
struct RawValues {
    std::optional<std::string> count;
    std::optional<std::string> min_gpus;
    std::optional<std::string> max_gpus;
    std::optional<std::string> gpu;
    std::optional<std::string> exclude;
    std::optional<std::string> banned; // system file only; already part of `exclude`
    std::optional<std::string> gpu_type;
    std::optional<std::string> min_memory;
    std::optional<std::string> max_util;
    std::optional<std::string> max_temp;
    std::optional<std::string> max_power;
    std::optional<std::string> lock_dir;
    std::optional<std::string> nvml_library;
    std::optional<std::string> timeout;
    std::optional<std::string> poll;
    std::optional<std::string> profile;
    std::optional<std::string> watch;
    bool show_config = false;
    bool wait = false;
    bool strict = false;
    bool require_idle = false;
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

// Accepts "80", "80%", "80C", "250W" for the given optional unit letter.
Result<unsigned> parse_with_unit(std::string_view flag, std::string_view text, char unit) {
    std::string_view digits = text;
    if (!digits.empty() &&
        (digits.back() == unit || digits.back() == static_cast<char>(unit + ('a' - 'A')))) {
        digits.remove_suffix(1);
    }
    auto value = units::parse_unsigned(digits, flag);
    if (!value) {
        return fail(ErrorKind::usage,
                    fmt::format("invalid value \"{}\" for {}: expected a whole number", text, flag),
                    value.error().hint);
    }
    return *value;
}

Result<unsigned> parse_count(std::string_view flag, std::string_view text) {
    auto value = units::parse_unsigned(text, flag);
    if (!value || *value == 0) {
        return fail(
            ErrorKind::usage,
            fmt::format("invalid value \"{}\" for {}: expected a number of GPUs >= 1", text, flag),
            fmt::format("e.g. {} 2", flag.substr(flag.find('/') + 1)));
    }
    return *value;
}

Result<void> fill_request(const RawValues& raw, selection::Request& request) {
    if (raw.count && (raw.min_gpus || raw.max_gpus)) {
        return fail(ErrorKind::usage,
                    "-n/--count cannot be combined with --min-gpus/--max-gpus",
                    "use -n N for exactly N GPUs, or --min-gpus/--max-gpus for a range");
    }
    if (raw.count) {
        auto n = parse_count("-n/--count", *raw.count);
        if (!n) {
            return tl::unexpected(n.error());
        }
        request.min_gpus = request.max_gpus = *n;
    }
    if (raw.min_gpus) {
        auto n = parse_count("--min-gpus", *raw.min_gpus);
        if (!n) {
            return tl::unexpected(n.error());
        }
        request.min_gpus = *n;
        request.max_gpus = *n; // as in the original with-gpu: max defaults to min
    }
    if (raw.max_gpus) {
        auto n = parse_count("--max-gpus", *raw.max_gpus);
        if (!n) {
            return tl::unexpected(n.error());
        }
        request.max_gpus = *n;
        if (!raw.min_gpus) {
            request.min_gpus = 1;
        }
    }
    if (raw.gpu) {
        auto refs = selection::parse_gpu_list(*raw.gpu, "--gpu", false);
        if (!refs) {
            return tl::unexpected(refs.error());
        }
        request.only = std::move(*refs);
    }
    if (raw.exclude) {
        auto refs = selection::parse_gpu_list(*raw.exclude, "--exclude", true);
        if (!refs) {
            return tl::unexpected(refs.error());
        }
        request.exclude = std::move(*refs);
    }
    if (raw.banned) {
        auto refs = selection::parse_gpu_list(*raw.banned, "banned", true);
        if (!refs) {
            return tl::unexpected(refs.error());
        }
        request.banned = std::move(*refs);
    }
    if (raw.gpu_type) {
        if (raw.gpu_type->empty()) {
            return fail(ErrorKind::usage, "--gpu-type needs a model name, e.g. --gpu-type A100");
        }
        request.gpu_type = *raw.gpu_type;
    }
    if (raw.strict && !raw.gpu_type) {
        return fail(ErrorKind::usage,
                    "--strict needs --gpu-type",
                    "e.g. --gpu-type H100 --strict to use nothing but H100s");
    }
    request.strict_type = raw.strict;
    if (raw.min_memory) {
        auto bytes = units::parse_size(*raw.min_memory);
        if (!bytes) {
            auto error = bytes.error();
            error.message = "--min-memory: " + error.message;
            return tl::unexpected(error);
        }
        request.min_free_bytes = *bytes;
    }
    if (raw.max_util) {
        auto pct = parse_with_unit("--max-util", *raw.max_util, '%');
        if (!pct) {
            return tl::unexpected(pct.error());
        }
        request.max_utilization_percent = *pct;
    }
    if (raw.max_temp) {
        auto celsius = parse_with_unit("--max-temp", *raw.max_temp, 'C');
        if (!celsius) {
            return tl::unexpected(celsius.error());
        }
        request.max_temperature_c = *celsius;
    }
    if (raw.max_power) {
        auto watts = parse_with_unit("--max-power", *raw.max_power, 'W');
        if (!watts) {
            return tl::unexpected(watts.error());
        }
        request.max_power_w = *watts;
    }
    request.require_idle = raw.require_idle;
    if (request.max_gpus < request.min_gpus) {
        return fail(
            ErrorKind::usage,
            fmt::format("--max-gpus {} is below --min-gpus {}", request.max_gpus, request.min_gpus),
            "--max-gpus must be at least --min-gpus (it defaults to it)");
    }
    return selection::validate(request);
}

// The flags the user typed, as the configuration layer's command-line source.
std::map<std::string, std::string> command_line_layer(const RawValues& raw) {
    std::map<std::string, std::string> layer;
    const std::pair<const char*, const std::optional<std::string>*> texts[] = {
        {"count", &raw.count},
        {"min_gpus", &raw.min_gpus},
        {"max_gpus", &raw.max_gpus},
        {"gpu", &raw.gpu},
        {"exclude", &raw.exclude},
        {"gpu_type", &raw.gpu_type},
        {"min_memory", &raw.min_memory},
        {"max_util", &raw.max_util},
        {"max_temp", &raw.max_temp},
        {"max_power", &raw.max_power},
        {"timeout", &raw.timeout},
        {"poll", &raw.poll},
        {"lock_dir", &raw.lock_dir},
        {"nvml_library", &raw.nvml_library},
    };
    for (const auto& [key, value] : texts) {
        if (*value) {
            layer.emplace(key, **value);
        }
    }
    const std::pair<const char*, bool> flags[] = {
        {"strict", raw.strict}, {"require_idle", raw.require_idle}, {"wait", raw.wait}};
    for (const auto& [key, set] : flags) {
        if (set) {
            layer.emplace(key, "true");
        }
    }
    return layer;
}

// The selection and waiting values after every layer was merged, in RawValues form so that
// one set of parsers (fill_request and below) turns text into typed options.
RawValues merged_values(const RawValues& typed, const config::Settings& settings) {
    RawValues merged = typed; // modes and display flags come from the command line only
    merged.count = settings.text("count");
    merged.min_gpus = settings.text("min_gpus");
    merged.max_gpus = settings.text("max_gpus");
    merged.gpu = settings.text("gpu");
    merged.exclude = settings.text("exclude");
    merged.banned = settings.text("banned");
    merged.gpu_type = settings.text("gpu_type");
    merged.min_memory = settings.text("min_memory");
    merged.max_util = settings.text("max_util");
    merged.max_temp = settings.text("max_temp");
    merged.max_power = settings.text("max_power");
    merged.timeout = settings.text("timeout");
    merged.poll = settings.text("poll");
    merged.lock_dir = settings.text("lock_dir");
    merged.nvml_library = settings.text("nvml_library");
    merged.strict = settings.is_true("strict");
    merged.require_idle = settings.is_true("require_idle");
    merged.wait = settings.is_true("wait");
    return merged;
}

} // namespace

Result<ParseResult> parse(const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& environment,
                          const ConfigFiles& files) {
    RawValues raw;
    CLI::App app{std::string(k_description), "with-gpu"};
    app.footer(std::string(k_examples));
    app.prefix_command(); // everything from the first non-option on is the command
    auto formatter = std::make_shared<HelpFormatter>();
    formatter->column_width(28);
    app.formatter(formatter);

    const std::string selection_group = "Choosing GPUs";
    app.add_option("-n,--count", raw.count, "Exactly N GPUs (default 1)")
        ->type_name("N")
        ->group(selection_group);
    app.add_option("--min-gpus", raw.min_gpus, "At least N GPUs; --max-gpus defaults to N")
        ->type_name("N")
        ->group(selection_group);
    app.add_option("--max-gpus", raw.max_gpus, "Take up to M GPUs if that many are free")
        ->type_name("M")
        ->group(selection_group);
    app.add_option("--gpu", raw.gpu, "Only these GPUs: NVML indices, UUIDs or PCI bus ids")
        ->type_name("LIST")
        ->group(selection_group);
    app.add_option("--exclude", raw.exclude, "Never these GPUs (as --gpu, or name:SUBSTRING)")
        ->type_name("LIST")
        ->group(selection_group);
    app.add_option("--gpu-type", raw.gpu_type, "Prefer GPUs whose name contains SUBSTR")
        ->type_name("SUBSTR")
        ->group(selection_group);
    app.add_flag("--strict", raw.strict, "With --gpu-type: use nothing else")
        ->group(selection_group);
    app.add_option("--min-memory",
                   raw.min_memory,
                   "At least SIZE free (default 2048 = MiB; 20G, 20GiB, 500MB; 0 = any)")
        ->type_name("SIZE")
        ->group(selection_group);
    app.add_option("--max-util", raw.max_util, "At most PCT% GPU utilisation")
        ->type_name("PCT")
        ->group(selection_group);
    app.add_option("--max-temp", raw.max_temp, "At most C degrees Celsius")
        ->type_name("C")
        ->group(selection_group);
    app.add_option("--max-power", raw.max_power, "At most W watts power draw")
        ->type_name("W")
        ->group(selection_group);
    app.add_flag("--require-idle", raw.require_idle, "No compute or graphics process at all")
        ->group(selection_group);

    const std::string wait_group = "Waiting";
    app.add_flag("--wait",
                 raw.wait,
                 "If nothing suitable is free, wait in a fair first-come-first-served queue")
        ->group(wait_group);
    app.add_option("--timeout",
                   raw.timeout,
                   "Wait at most DURATION (90, 30s, 5m, 2h), then exit 124; implies --wait")
        ->type_name("DURATION")
        ->group(wait_group);
    app.add_option("--poll",
                   raw.poll,
                   "While waiting, re-read GPU figures this often to notice GPUs freed by "
                   "programs outside with-gpu (default 2s)")
        ->type_name("DURATION")
        ->group(wait_group);

    const std::string view_group = "Looking instead of running";
    app.add_flag("--status", raw.status, "Show every GPU, its processes and its claim holder")
        ->group(view_group);
    app.add_option(
           "--watch", raw.watch, "With --status: redraw every INTERVAL (default 2s) until Ctrl-C")
        ->type_name("[INTERVAL]")
        ->expected(0, 1)
        ->group(view_group);
    app.add_flag("--dry-run", raw.dry_run, "Show what would be chosen and why; run nothing")
        ->group(view_group);
    app.add_flag("--json", raw.json, "Machine-readable output for --status and --dry-run")
        ->group(view_group);

    const std::string slurm_group = "SLURM (docs/slurm.md)";
    app.add_flag("--slurm-gres-conf",
                 raw.slurm_gres_conf,
                 "Print gres.conf lines for this machine's GPUs and the matching slurm.conf "
                 "NodeName= Gres= line")
        ->group(slurm_group);
    app.add_flag("--slurm-prolog",
                 raw.slurm_prolog,
                 "For slurmd's Prolog=: claim the job's GPUs for it until the job ends")
        ->group(slurm_group);
    app.add_flag("--slurm-epilog",
                 raw.slurm_epilog,
                 "For slurmd's Epilog=: release the GPUs claimed by --slurm-prolog")
        ->group(slurm_group);

    const std::string setup_group = "Setup";
    app.add_option("--lock-dir",
                   raw.lock_dir,
                   fmt::format("Shared claim directory (env WITH_GPU_LOCK_DIR; default {})",
                               gpu::default_lock_dir))
        ->type_name("DIR")
        ->group(setup_group);
    app.add_option(
           "--nvml-library", raw.nvml_library, "Load NVML from PATH (env WITH_GPU_NVML_LIBRARY)")
        ->type_name("PATH")
        ->group(setup_group);
    app.add_flag("-q,--quiet", raw.quiet, "No notes on stderr")->group(setup_group);
    app.add_flag("-v,--verbose", raw.verbose, "Say which GPUs were chosen and why")
        ->group(setup_group);
    app.add_option("--profile",
                   raw.profile,
                   "Use the settings of [profiles.NAME] in the configuration files")
        ->type_name("NAME")
        ->group(setup_group);
    app.add_flag("--show-config",
                 raw.show_config,
                 "Print the effective settings and where each came from, then exit")
        ->group(setup_group);
    app.add_flag("-V,--version", raw.version, "Print the version and exit")->group(setup_group);
    app.set_help_flag("-h,--help", "Print this help and exit")->group(setup_group);

    std::vector<std::string> reversed(args.rbegin(), args.rend()); // CLI11 parses a reversed vector
    try {
        app.parse(reversed);
    } catch (const CLI::CallForHelp&) {
        return ParseResult{Information{app.help()}};
    } catch (const CLI::ParseError& e) {
        return fail(ErrorKind::usage, e.what(), "see with-gpu --help");
    }
    if (raw.version) {
        return ParseResult{Information{fmt::format("with-gpu {}\n", WITH_GPU_VERSION)}};
    }
    if (raw.watch && !raw.status) {
        return fail(
            ErrorKind::usage, "--watch is for --status", "e.g. with-gpu --status --watch 1s");
    }
    if (raw.wait && (raw.status || raw.dry_run)) {
        return fail(ErrorKind::usage,
                    "--wait is for running a command",
                    "--dry-run and --status show the situation now");
    }
    if (raw.timeout && (raw.status || raw.dry_run)) {
        return fail(ErrorKind::usage,
                    "--timeout is for running a command",
                    "--dry-run and --status show the situation now");
    }

    config::Sources sources;
    sources.system_file = files.system;
    sources.user_file = files.user;
    sources.environment = environment;
    sources.command_line = command_line_layer(raw);
    sources.profile = raw.profile;
    auto settings = config::resolve(sources);
    if (!settings) {
        return tl::unexpected(settings.error());
    }
    if (raw.show_config) {
        return ParseResult{Information{config::show(*settings)}};
    }
    const RawValues typed = raw;
    raw = merged_values(typed, *settings);

    Options options;
    std::vector<std::string> command = app.remaining();
    if (!command.empty() && command.front() == "--") {
        command.erase(command.begin());
    } else if (!command.empty() && command.front().size() > 1 && command.front()[0] == '-') {
        return fail(ErrorKind::usage,
                    fmt::format("unknown option {}", command.front()),
                    "see with-gpu --help; put the command after -- if it starts with '-'");
    }
    options.command = std::move(command);

    if (raw.status && raw.dry_run) {
        return fail(ErrorKind::usage,
                    "--status and --dry-run cannot be combined",
                    "--status shows every GPU; --dry-run shows what a request would get");
    }
    const int slurm_modes =
        (raw.slurm_gres_conf ? 1 : 0) + (raw.slurm_prolog ? 1 : 0) + (raw.slurm_epilog ? 1 : 0);
    if (slurm_modes > 0) {
        if (slurm_modes > 1 || raw.status || raw.dry_run || raw.json || !options.command.empty()) {
            return fail(ErrorKind::usage,
                        "--slurm-gres-conf, --slurm-prolog and --slurm-epilog stand alone",
                        "e.g. with-gpu --slurm-gres-conf > gres.conf; see docs/slurm.md");
        }
        options.mode = raw.slurm_gres_conf ? Options::Mode::slurm_gres_conf
                       : raw.slurm_prolog  ? Options::Mode::slurm_prolog
                                           : Options::Mode::slurm_epilog;
    } else if (raw.status) {
        options.mode = Options::Mode::status;
        if (!options.command.empty()) {
            return fail(ErrorKind::usage,
                        fmt::format("--status takes no command (got \"{}\")", options.command[0]),
                        "use with-gpu --status alone, or leave --status out to run the command");
        }
    } else if (raw.dry_run) {
        options.mode = Options::Mode::dry_run;
    } else {
        if (raw.json) {
            return fail(ErrorKind::usage,
                        "--json is for --status and --dry-run",
                        "e.g. with-gpu --status --json");
        }
        if (options.command.empty()) {
            return fail(ErrorKind::usage,
                        "no command given",
                        "usage: with-gpu [OPTIONS] [--] COMMAND [ARGS...]; see with-gpu --help");
        }
    }
    if (raw.timeout) {
        auto timeout = units::parse_duration(*raw.timeout);
        if (!timeout) {
            auto error = timeout.error();
            error.message = "--timeout: " + error.message;
            return tl::unexpected(error);
        }
        options.timeout = *timeout;
    }
    if (raw.poll) {
        auto poll = units::parse_duration(*raw.poll);
        if (!poll || poll->count() < 10) {
            return fail(ErrorKind::usage,
                        fmt::format("--poll: invalid interval \"{}\"", *raw.poll),
                        "e.g. --poll 500ms, --poll 5s (at least 10ms)");
        }
        options.poll = *poll;
    }
    // A configured wait = true or timeout simply does not apply to --status and --dry-run.
    options.wait = options.mode == Options::Mode::run && (raw.wait || raw.timeout.has_value());
    options.json = raw.json;
    if (raw.watch) {
        if (!raw.status) {
            return fail(
                ErrorKind::usage, "--watch is for --status", "e.g. with-gpu --status --watch 1s");
        }
        if (raw.json) {
            return fail(ErrorKind::usage,
                        "--watch redraws a table; it cannot be combined with --json",
                        "for a stream of JSON, run with-gpu --status --json in a loop");
        }
        auto interval =
            raw.watch->empty() ? units::parse_duration("2s") : units::parse_duration(*raw.watch);
        if (!interval || interval->count() < 100) {
            return fail(ErrorKind::usage,
                        fmt::format("--watch: invalid interval \"{}\"", *raw.watch),
                        "e.g. --watch, --watch 1s, --watch 500ms (at least 100ms)");
        }
        options.watch = *interval;
    }
    options.quiet = raw.quiet;
    options.verbose = raw.verbose;

    if (auto filled = fill_request(raw, options.request); !filled) {
        return tl::unexpected(filled.error());
    }

    options.lock_dir = raw.lock_dir.value_or(gpu::default_lock_dir);
    if (options.lock_dir.empty()) {
        return fail(ErrorKind::usage, "--lock-dir must not be empty");
    }
    options.nvml_library = raw.nvml_library.value_or("");
    return ParseResult{std::move(options)};
}

} // namespace withgpu::cli
