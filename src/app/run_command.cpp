// Run mode and --dry-run: snapshot -> (decision lock) claims -> select -> claim
// -> run the job with the claim inherited -> end as the job ended.
#include "app/commands.hpp"
#include "app/exit_code.hpp"
#include "lock/claim.hpp"
#include "nvml/nvml.hpp"
#include "procfs/process_info.hpp"
#include "report/decision_report.hpp"
#include "run/command.hpp"
#include "run/job_environment.hpp"
#include "selection/select.hpp"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <unistd.h>

namespace withgpu::app {

namespace {

std::int64_t now_unix() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string join(const std::vector<std::string>& words) {
    std::string text;
    for (const auto& w : words) {
        text += (text.empty() ? "" : " ") + w;
    }
    return text;
}

// Reads one consistent snapshot and releases NVML before the job starts: the job must not
// inherit with-gpu's driver handles, and a long job should not keep NVML initialised here.
Result<gpu::MachineSnapshot> read_machine(const cli::Options& options) {
    auto nvml = nvml::Nvml::open(options.nvml_library);
    if (!nvml) {
        return tl::unexpected(nvml.error());
    }
    return nvml->snapshot();
}

Error no_choice_error(const selection::Decision& decision) {
    if (decision.outcome == selection::Decision::Outcome::impossible) {
        return Error{ErrorKind::environment,
                     fmt::format("this request can never be met on this machine: {}\n{}",
                                 decision.summary,
                                 report::rejection_lines(decision)),
                     "relax the request (see with-gpu --dry-run for every GPU's reasons)"};
    }
    return Error{ErrorKind::no_gpu_now,
                 fmt::format("no suitable GPU is free now: {}\n{}",
                             decision.summary,
                             report::rejection_lines(decision)),
                 "try again later, or relax the request (with-gpu --status shows who uses "
                 "which GPU)"};
}

// --dry-run: the decision for every GPU; exit 0 if a choice would be made now.
Result<int> show_decision(const cli::Options& options,
                          const gpu::MachineSnapshot& machine,
                          const selection::Request& request) {
    auto claims = current_claims(options.lock_dir, machine);
    if (!claims) {
        return tl::unexpected(claims.error());
    }
    auto decision = selection::select(machine, request, *claims, now_unix());
    fmt::print("{}",
               options.json ? report::decision_json(machine, decision).dump(2) + "\n"
                            : report::decision_text(machine, decision));
    switch (decision.outcome) {
    case selection::Decision::Outcome::chosen:
        return exit_ok;
    case selection::Decision::Outcome::none_now:
        return exit_no_gpu_now;
    case selection::Decision::Outcome::impossible:
        return exit_failed;
    }
    return exit_failed;
}

} // namespace

Result<int> run_command(const cli::Options& options, const ProcessEnvironment& env) {
    const bool dry_run = options.mode == cli::Options::Mode::dry_run;

    // A typo in the command is reported before any GPU is looked at or claimed.
    std::optional<run::ResolvedCommand> command;
    if (!dry_run) {
        auto resolved = run::resolve_command(options.command, env.get("PATH"));
        if (!resolved) {
            return tl::unexpected(resolved.error());
        }
        command = std::move(*resolved);
    }

    selection::Request request = options.request;
    auto visible = selection::parse_cuda_visible_devices(env.get("CUDA_VISIBLE_DEVICES"));
    if (!visible) {
        return tl::unexpected(visible.error());
    }
    request.visible = std::move(*visible);

    auto machine = read_machine(options);
    if (!machine) {
        return tl::unexpected(machine.error());
    }

    if (dry_run) {
        return show_decision(options, *machine, request);
    }

    auto dir = lock::LockDir::open(options.lock_dir, true);
    if (!dir) {
        return tl::unexpected(dir.error());
    }

    // Under the decision lock no other with-gpu is between looking and claiming, so the
    // claims read here stay true until ours are taken. A GPU claimed by something outside
    // that protocol makes try_acquire fail; then look again (bounded).
    std::optional<lock::Claim> claim;
    selection::Decision decision;
    for (int attempt = 0; attempt < 5 && !claim; ++attempt) {
        auto decision_lock = lock::DecisionLock::acquire(*dir, lock::DecisionLock::Mode::exclusive);
        if (!decision_lock) {
            return tl::unexpected(decision_lock.error());
        }
        auto claims = lock::read_claims(*dir, machine->uuids());
        if (!claims) {
            return tl::unexpected(claims.error());
        }
        decision = selection::select(*machine, request, *claims, now_unix());
        if (decision.outcome != selection::Decision::Outcome::chosen) {
            return tl::unexpected(no_choice_error(decision));
        }
        std::vector<std::string> uuids;
        for (unsigned index : decision.chosen) {
            uuids.push_back(machine->find(index)->uuid);
        }
        auto taken = lock::Claim::try_acquire(*dir, uuids);
        if (!taken) {
            return tl::unexpected(taken.error());
        }
        claim = std::move(*taken);
    }
    if (!claim) {
        return fail(ErrorKind::no_gpu_now,
                    "the chosen GPUs were claimed by a process outside with-gpu's decision "
                    "protocol, five times in a row",
                    "check for an old with-gpu version using the same lock directory");
    }

    if (options.verbose && !options.quiet) {
        fmt::print(stderr, "with-gpu: {}\n", decision.summary);
        fmt::print(stderr, "{}", report::rejection_lines(decision));
    }

    std::vector<run::ChosenGpu> chosen;
    std::string chosen_text;
    for (unsigned index : decision.chosen) {
        const gpu::GpuSnapshot* g = machine->find(index);
        chosen.push_back({g->index, g->uuid});
        chosen_text +=
            fmt::format("{}GPU {} ({})", chosen_text.empty() ? "" : ", ", index, g->uuid);
    }
    if (options.verbose && !options.quiet) {
        fmt::print(stderr, "with-gpu: running on {}\n", chosen_text);
    }

    gpu::ClaimHolder holder;
    holder.supervisor_pid = static_cast<int>(::getpid());
    holder.user = procfs::user_name(::getuid());
    holder.command = join(options.command);
    holder.since_unix = now_unix();
    // The record is diagnostic (for --status); failing to write it must not stop the job.
    (void)claim->record_holder(holder);

    auto status = run::run_and_wait(*command,
                                    run::job_environment(env.variables, chosen),
                                    claim->descriptors(),
                                    [&](pid_t pid) noexcept {
                                        holder.pid = static_cast<int>(pid);
                                        (void)claim->record_holder(holder);
                                    });
    if (!status) {
        return tl::unexpected(status.error());
    }
    claim.reset(); // release our copy before ending like the job
    run::exit_as(*status);
}

} // namespace withgpu::app
