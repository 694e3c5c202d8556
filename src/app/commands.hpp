// The two things with-gpu does, each a function of the parsed options and the
// process environment. They return with-gpu's exit code or an Error.
#pragma once

#include "cli/options.hpp"
#include "gpu/claim.hpp"
#include "gpu/snapshot.hpp"
#include "queue/ticket.hpp"
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

} // namespace withgpu::app
