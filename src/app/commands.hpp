// What with-gpu does, each a function of the parsed options and the process environment.
// They return with-gpu's exit code or an Error.
#pragma once

#include "cli/options.hpp"
#include "core/environment.hpp"
#include "util/error.hpp"

namespace withgpu::app {

// --status [--json | --watch]
[[nodiscard]] Result<int> status_command(const cli::Options& options,
                                         const core::ProcessEnvironment& env);

// Run mode and --dry-run: select, claim, run. In run mode a successful start never returns:
// with-gpu ends the way the command ended.
[[nodiscard]] Result<int> run_command(const cli::Options& options,
                                      const core::ProcessEnvironment& env);

// --slurm-gres-conf, --slurm-prolog, --slurm-epilog (docs/slurm.md)
[[nodiscard]] Result<int> slurm_gres_conf_command(const cli::Options& options);
[[nodiscard]] Result<int> slurm_prolog_command(const cli::Options& options,
                                               const core::ProcessEnvironment& env);
[[nodiscard]] Result<int> slurm_epilog_command(const cli::Options& options,
                                               const core::ProcessEnvironment& env);

} // namespace withgpu::app
