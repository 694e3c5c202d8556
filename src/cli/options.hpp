// The command line: argv (plus the few environment variables that stand in for
// flags) -> Options. Pure: never prints, never exits; help and version text
// come back as values for app/ to print.
#pragma once

#include "config/launch.hpp"
#include "config/resolve.hpp"
#include "selection/select.hpp"
#include "util/error.hpp"

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace withgpu::cli {

struct Options {
    enum class Mode {
        run,             // claim GPUs and run the command
        status,          // --status: show GPUs, processes, claims
        dry_run,         // --dry-run: show the decision for every GPU, run nothing
        slurm_gres_conf, // --slurm-gres-conf: print gres.conf lines for this machine
        slurm_prolog,    // --slurm-prolog: hold a SLURM job's GPUs (slurmd's Prolog=)
        slurm_epilog,    // --slurm-epilog: end that holder (slurmd's Epilog=)
    };
    Mode mode = Mode::run;
    bool json = false;
    // --watch [INTERVAL] with --status: redraw every INTERVAL (default 2s) until Ctrl-C.
    std::optional<std::chrono::milliseconds> watch;
    bool quiet = false;   // -q: no notes on stderr
    bool verbose = false; // -v: say which GPUs were chosen and why others were not

    // The typed settings: the request (without `visible`: core::place fills it from the
    // environment), waiting, the lock directory, NVML. launch.wait only in run mode.
    config::Launch launch;

    std::vector<std::string> command; // the command and its arguments (run mode only)
};

// Text to print on stdout before exiting 0 (--help, --version).
struct Information {
    std::string text;
};

using ParseResult = std::variant<Options, Information>;

// The configuration files' texts, read by the caller (this module does no I/O).
using ConfigFiles = config::Files;

// `args` excludes argv[0]. Settings come from built-in defaults < system file < user file <
// profile < environment (WITH_GPU_*) < flags (docs/config.md). Errors are ErrorKind::usage
// with a hint (file:line:column for the files). --help, --version and --show-config come
// back as Information.
[[nodiscard]] Result<ParseResult> parse(const std::vector<std::string>& args,
                                        const std::map<std::string, std::string>& environment,
                                        const ConfigFiles& files = {});

} // namespace withgpu::cli
