// Run mode and --dry-run: place the request, read the GPUs, acquire (the one acquisition path,
// core/acquire.hpp, with the CLI's progress display and signals) -> run the job with the
// claim inherited -> end as the job ended.
#include "app/commands.hpp"
#include "app/common.hpp"
#include "app/exit_code.hpp"
#include "app/interrupts.hpp"
#include "app/job_guard.hpp"
#include "app/terminal_progress.hpp"
#include "core/acquire.hpp"
#include "core/machine.hpp"
#include "core/placement.hpp"
#include "core/status.hpp"
#include "lock/claim.hpp"
#include "nvml/nvml.hpp"
#include "os/clock.hpp"
#include "procfs/process_info.hpp"
#include "report/decision_report.hpp"
#include "run/command.hpp"
#include "run/job_environment.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <unistd.h>

namespace withgpu::app {

namespace {

// --dry-run: the decision for every GPU, queue included; exit 0 if a choice would be made now.
Result<int> show_decision(const cli::Options& options,
                          const core::Placement& placement,
                          const gpu::MachineSnapshot& machine) {
    TerminalProgress progress(options.quiet);
    const core::Cancellation never; // named: GCC 12 -O3 warns about the temporary's
    const core::Hooks hooks{progress, never};
    auto decision = core::decide_now(placement.lock_dir, machine, placement.request, hooks);
    if (!decision) {
        return tl::unexpected(decision.error());
    }
    fmt::print("{}",
               options.json ? report::decision_json(machine, *decision).dump(2) + "\n"
                            : report::decision_text(machine, *decision));
    switch (decision->outcome) {
    case selection::Decision::Outcome::chosen:
        return exit_ok;
    case selection::Decision::Outcome::none_now:
        return exit_no_gpu_now;
    case selection::Decision::Outcome::impossible:
        return exit_failed;
    }
    return exit_failed;
}

// The acquisition path with the CLI's hooks: the waiting line on stderr, and signals that end
// a wait (with-gpu then dies of the signal, its ticket gone).
Result<core::Acquired> acquire(const cli::Options& options,
                               const core::Placement& placement,
                               const nvml::Nvml& nvml,
                               gpu::MachineSnapshot machine,
                               const lock::LockDir& dir) {
    TerminalProgress progress(options.quiet);
    std::optional<Interrupts> interrupts;
    if (options.launch.wait) {
        interrupts.emplace();
    }
    const core::Hooks hooks{progress,
                            interrupts ? interrupts->cancellation() : core::Cancellation{},
                            core::system_clock(),
                            interrupts ? interrupts->stopping() : core::Stopping{}};
    const core::Identity who{
        static_cast<int>(::getpid()), ::getuid(), join_command(options.command)};
    const core::Waiting waiting{options.launch.wait, options.launch.timeout, options.launch.poll};
    auto got = core::acquire(placement.request, waiting, who, nvml, std::move(machine), dir, hooks);
    if (!got && got.error().kind == ErrorKind::cancelled && interrupts && interrupts->received()) {
        interrupts->die_of_it(); // everything the wait held is gone by now
    }
    return got;
}

std::vector<run::ChosenGpu> chosen_gpus(const core::Placement& placement,
                                        const core::Acquired& acquired) {
    std::vector<run::ChosenGpu> chosen;
    for (unsigned index : acquired.decision.chosen) {
        const gpu::GpuSnapshot* g = acquired.machine.find(index);
        chosen.push_back({g->index, g->uuid, core::child_cuda_id(placement, *g)});
    }
    return chosen;
}

void say_why(const cli::Options& options, const core::Acquired& acquired) {
    if (!options.verbose || options.quiet) {
        return;
    }
    std::string chosen_text;
    for (unsigned index : acquired.decision.chosen) {
        chosen_text += fmt::format("{}GPU {} ({})",
                                   chosen_text.empty() ? "" : ", ",
                                   index,
                                   acquired.machine.find(index)->uuid);
    }
    fmt::print(stderr, "with-gpu: {}\n", acquired.decision.summary);
    fmt::print(stderr, "{}", report::rejection_lines(acquired.decision));
    fmt::print(stderr, "with-gpu: running on {}\n", chosen_text);
}

// Everything before the job starts. NVML is initialised once here and its session ended
// before the job starts: the job must not inherit our driver handles. The library itself is
// left in `loaded`, to be unloaded once the job has started (a long job should not keep NVML
// in with-gpu, and the job need not wait for the unloading). nullopt for --dry-run, which is
// done by then (`exit`).
Result<std::optional<core::Acquired>> claim_gpus(const cli::Options& options,
                                                 core::Placement& placement,
                                                 std::optional<nvml::Nvml>& loaded,
                                                 int& exit) {
    // --dry-run shows every figure; a launch reads only what it chooses by.
    const bool dry_run = options.mode == cli::Options::Mode::dry_run;
    auto opened = core::open_machine(options.launch.nvml_library,
                                     dry_run ? gpu::Figures::all() : core::figures_for(placement));
    if (!opened) {
        return tl::unexpected(opened.error());
    }
    auto* machine = &opened->snapshot;
    if (auto settled = core::settle(placement, *machine); !settled) {
        return tl::unexpected(settled.error());
    }
    if (dry_run) {
        auto shown = show_decision(options, placement, *machine);
        if (!shown) {
            return tl::unexpected(shown.error());
        }
        exit = *shown;
        return std::optional<core::Acquired>();
    }
    auto dir = lock::LockDir::open(placement.lock_dir, true);
    if (!dir) {
        return tl::unexpected(dir.error());
    }
    auto got = acquire(options, placement, opened->nvml, std::move(*machine), *dir);
    if (!got) {
        return tl::unexpected(got.error());
    }
    opened->nvml.end_session();
    loaded.emplace(std::move(opened->nvml));
    return std::optional<core::Acquired>(std::move(*got));
}

GuardSettings guard_settings(const cli::Options& options) {
    GuardSettings settings;
    settings.hold = options.launch.hold;
    settings.hold_timeout = options.launch.hold_timeout;
    settings.kill_misplaced = options.launch.kill_misplaced;
    settings.placement_poll = options.launch.poll;
    settings.nvml_library = options.launch.nvml_library;
    settings.quiet = options.quiet;
    return settings;
}

// The guard of the job `pid`: its holds, if --hold, and the placement check. A guard that
// cannot start costs the job nothing but a warning.
void start_guard(std::optional<JobGuard>& guard,
                 const GuardSettings& settings,
                 core::Acquired& acquired,
                 pid_t pid,
                 const gpu::ClaimHolder& holder) noexcept {
    try {
        std::vector<GuardedGpu> claimed;
        std::vector<GuardedGpu> others;
        for (const auto& g : acquired.machine.gpus) {
            const bool chosen = std::find(acquired.decision.chosen.begin(),
                                          acquired.decision.chosen.end(),
                                          g.index) != acquired.decision.chosen.end();
            (chosen ? claimed : others).push_back({g.index, g.uuid, g.pci_bus_id});
        }
        guard.emplace(settings, pid, std::move(claimed), std::move(others), acquired.claim, holder);
    } catch (const std::exception& e) {
        fmt::print(stderr, "with-gpu: warning: the job runs unguarded: {}\n", e.what());
    }
}

} // namespace

Result<int> run_command(const cli::Options& options, const core::ProcessEnvironment& env) {
    // A typo in the command is reported before any GPU is looked at, claimed or waited for.
    std::optional<run::ResolvedCommand> command;
    if (options.mode != cli::Options::Mode::dry_run) {
        auto resolved = run::resolve_command(options.command, env.get("PATH"));
        if (!resolved) {
            return tl::unexpected(resolved.error());
        }
        command = std::move(*resolved);
    }
    auto placement = core::place(options.launch, env);
    if (!placement) {
        return tl::unexpected(placement.error());
    }
    int exit = exit_ok;
    std::optional<nvml::Nvml> loaded; // NVML, its session ended: unloaded once the job runs
    auto acquired = claim_gpus(options, *placement, loaded, exit);
    if (!acquired || !*acquired) {
        return acquired ? Result<int>(exit) : tl::unexpected(acquired.error());
    }
    say_why(options, **acquired);
    lock::Claim& claim = (*acquired)->claim;

    gpu::ClaimHolder holder;
    holder.supervisor_pid = static_cast<int>(::getpid());
    holder.command = join_command(options.command);
    holder.since_unix = now_unix();

    JobGuard::adopt_orphans();
    std::optional<JobGuard> guard;
    const GuardSettings guarding = guard_settings(options);
    run::JobHooks beside;
    // Once the job runs, beside it (nothing here delays its start): the claim's record, and
    // NVML and the watch let go.
    beside.started = [&](pid_t pid) noexcept {
        holder.pid = static_cast<int>(pid);
        holder.user = procfs::user_name(::getuid()); // NSS can be slow (nscd, LDAP)
        // The record is diagnostic (for --status); failing to write it must not stop the job.
        (void)claim.record_holder(holder);
        loaded.reset();
        (*acquired)->release_watch.reset();
    };
    // The guard (holds, placement check) starts when it first has work: a short job ends first.
    beside.after = JobGuard::first_work_after(guarding);
    beside.still_running = [&](pid_t pid) noexcept {
        start_guard(guard, guarding, **acquired, pid, holder);
    };
    auto status =
        run::run_and_wait(*command,
                          run::job_environment(env.variables, chosen_gpus(*placement, **acquired)),
                          claim.descriptors(),
                          beside);
    loaded.reset(); // the job could not start
    guard.reset();  // holds end with the job
    if (!status) {
        return tl::unexpected(status.error());
    }
    acquired->reset(); // release our copy of the claim before ending like the job
    run::exit_as(*status);
}

} // namespace withgpu::app
