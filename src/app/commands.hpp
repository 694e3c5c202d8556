// The two things with-gpu does, each a function of the parsed options and the
// process environment. They return with-gpu's exit code or an Error.
#pragma once

#include "cli/options.hpp"
#include "gpu/claim.hpp"
#include "gpu/snapshot.hpp"
#include "queue/ticket.hpp"
#include "slurm/allocation.hpp"
#include "util/error.hpp"

#include <string>
#include <vector>

namespace withgpu::app {

// What the process was started with, gathered once in main().
struct ProcessEnvironment {
    std::vector<std::string> variables; // "NAME=value", as environ
    [[nodiscard]] std::optional<std::string> get(std::string_view name) const;
};

// Claims and waiting jobs as --status sees them: read under the shared decision lock and
// without creating anything (no directory means nothing was ever claimed). `notes` name
// the odd files that were ignored or could not be read.
struct LockView {
    gpu::ClaimMap claims;
    std::vector<queue::Ticket> queue;
    std::vector<std::string> notes;
};
[[nodiscard]] Result<LockView> current_view(const std::string& lock_dir,
                                            const gpu::MachineSnapshot& machine);

// --status [--json]
[[nodiscard]] Result<int> status_command(const cli::Options& options,
                                         const ProcessEnvironment& env);

// Run mode and --dry-run: select, claim, run. In run mode a successful start never returns:
// with-gpu ends the way the command ended.
[[nodiscard]] Result<int> run_command(const cli::Options& options, const ProcessEnvironment& env);

// Inside a SLURM job: the allocation from SLURM's variables (nullopt outside SLURM).
[[nodiscard]] Result<std::optional<slurm::Allocation>>
slurm_allocation(const ProcessEnvironment& env);

// Where a job's own with-gpu launches claim: `lock_dir`, or, when the job's GPUs are held
// for it by a --slurm-prolog holder, the job's own directory inside it (docs/slurm.md).
[[nodiscard]] Result<std::string> allocation_lock_dir(const std::string& lock_dir,
                                                      const slurm::Allocation& allocation,
                                                      const gpu::MachineSnapshot& machine);
[[nodiscard]] std::string job_lock_dir(const std::string& lock_dir, const std::string& job_id);

// --slurm-gres-conf, --slurm-prolog, --slurm-epilog (docs/slurm.md)
[[nodiscard]] Result<int> slurm_gres_conf_command(const cli::Options& options);
[[nodiscard]] Result<int> slurm_prolog_command(const cli::Options& options,
                                               const ProcessEnvironment& env);
[[nodiscard]] Result<int> slurm_epilog_command(const cli::Options& options,
                                               const ProcessEnvironment& env);

} // namespace withgpu::app
