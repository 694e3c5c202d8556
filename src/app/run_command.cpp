// Run mode and --dry-run: snapshot -> acquire (decision lock, claims, queue) ->
// run the job with the claim inherited -> end as the job ended.
#include "app/acquire.hpp"
#include "app/commands.hpp"
#include "app/common.hpp"
#include "app/exit_code.hpp"
#include "app/machine.hpp"
#include "lock/claim.hpp"
#include "nvml/nvml.hpp"
#include "os/clock.hpp"
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

// --dry-run: the decision for every GPU, queue included; exit 0 if a choice would be made now.
Result<int> show_decision(const cli::Options& options,
                          const gpu::MachineSnapshot& machine,
                          const selection::Request& request) {
    selection::Decision decision;
    std::error_code missing;
    if (std::filesystem::exists(options.lock_dir, missing)) {
        auto dir = lock::LockDir::open(options.lock_dir, false);
        if (!dir) {
            return tl::unexpected(dir.error());
        }
        // Looking creates nothing: without decide.lock there is no decision to wait for.
        auto shared =
            lock::DecisionLock::acquire(*dir, lock::DecisionLock::Mode::shared, /*create=*/false);
        if (!shared) {
            return tl::unexpected(shared.error());
        }
        std::vector<std::string> fresh;
        if (!shared->note().empty()) {
            fresh.push_back(shared->note());
        }
        auto turn = look(*dir, machine, request, std::nullopt, fresh);
        Notes(options.quiet).print(fresh);
        if (!turn) {
            return tl::unexpected(turn.error());
        }
        decision = std::move(turn->decision);
    } else {
        decision = selection::select(machine, request, {}, now_unix());
    }
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

    // A typo in the command is reported before any GPU is looked at, claimed or waited for.
    std::optional<run::ResolvedCommand> command;
    if (!dry_run) {
        auto resolved = run::resolve_command(options.command, env.get("PATH"));
        if (!resolved) {
            return tl::unexpected(resolved.error());
        }
        command = std::move(*resolved);
    }

    selection::Request request = options.request;
    auto allocation = slurm_allocation(env);
    if (!allocation) {
        return tl::unexpected(allocation.error());
    }
    if (*allocation) {
        // Inside SLURM the allocation, not CUDA_VISIBLE_DEVICES, says which GPUs are ours:
        // under ConstrainDevices CUDA_VISIBLE_DEVICES restarts at 0 (docs/slurm.md).
        const slurm::Allocation& a = **allocation;
        if (a.minor_numbers.empty()) {
            return fail(ErrorKind::environment,
                        fmt::format("SLURM {} holds no GPU (SLURM_STEP_GPUS and SLURM_JOB_GPUS "
                                    "are unset or empty); inside SLURM with-gpu uses only the "
                                    "allocation's GPUs",
                                    a.describe()),
                        "ask SLURM for GPUs, e.g. srun --gres=gpu:1 (or --gpus=1)");
        }
        request.visible.restricted = true;
        request.visible.source = a.source;
        request.visible.original = a.source_value;
        for (const unsigned minor : a.minor_numbers) {
            selection::GpuRef ref;
            ref.kind = selection::GpuRef::Kind::minor_number;
            ref.index = minor;
            ref.text = std::to_string(minor);
            ref.key = ref.text;
            request.visible.refs.push_back(std::move(ref));
        }
    } else {
        auto visible = selection::parse_cuda_visible_devices(env.get("CUDA_VISIBLE_DEVICES"));
        if (!visible) {
            return tl::unexpected(visible.error());
        }
        request.visible = std::move(*visible);
    }
    cli::Options effective = options; // the lock directory may become the job's own

    std::optional<Acquired> acquired;
    {
        // NVML is initialised once here and closed before the job starts: the job must not
        // inherit our driver handles, and a long job should not keep NVML open in with-gpu.
        auto nvml = nvml::Nvml::open(options.nvml_library);
        if (!nvml) {
            return tl::unexpected(nvml.error());
        }
        auto machine = read_machine(*nvml);
        if (!machine) {
            return tl::unexpected(machine.error());
        }
        // A UUID prefix that matches two GPUs would silently pick one of them.
        for (const auto& [refs, name] :
             {std::pair{&request.only, "--gpu"},
              std::pair{&request.banned, "banned (system configuration)"},
              std::pair{&request.exclude, "--exclude"}}) {
            if (auto unique = selection::check_unique_prefixes(*refs, name, *machine); !unique) {
                return tl::unexpected(unique.error());
            }
        }
        if (*allocation) {
            auto lock_dir = allocation_lock_dir(options.lock_dir, **allocation, *machine);
            if (!lock_dir) {
                return tl::unexpected(lock_dir.error());
            }
            effective.lock_dir = std::move(*lock_dir);
        }
        if (dry_run) {
            return show_decision(effective, *machine, request);
        }
        auto dir = lock::LockDir::open(effective.lock_dir, true);
        if (!dir) {
            return tl::unexpected(dir.error());
        }
        auto got = acquire(effective, request, *nvml, std::move(*machine), *dir);
        if (!got) {
            return tl::unexpected(got.error());
        }
        acquired.emplace(std::move(*got));
    }
    lock::Claim& claim = acquired->claim;
    const selection::Decision& decision = acquired->decision;

    std::vector<run::ChosenGpu> chosen;
    std::string chosen_text;
    for (unsigned index : decision.chosen) {
        const gpu::GpuSnapshot* g = acquired->machine.find(index);
        std::string visible_id; // SLURM's id for it inside an allocation
        if (*allocation && g->minor_number) {
            visible_id = (*allocation)->cuda_id_of(*g->minor_number).value_or("");
        }
        chosen.push_back({g->index, g->uuid, visible_id});
        chosen_text +=
            fmt::format("{}GPU {} ({})", chosen_text.empty() ? "" : ", ", index, g->uuid);
    }
    if (options.verbose && !options.quiet) {
        fmt::print(stderr, "with-gpu: {}\n", decision.summary);
        fmt::print(stderr, "{}", report::rejection_lines(decision));
        fmt::print(stderr, "with-gpu: running on {}\n", chosen_text);
    }

    gpu::ClaimHolder holder;
    holder.supervisor_pid = static_cast<int>(::getpid());
    holder.user = procfs::user_name(::getuid());
    holder.command = join_command(options.command);
    holder.since_unix = now_unix();
    // The record is diagnostic (for --status); failing to write it must not stop the job.
    (void)claim.record_holder(holder);

    auto status = run::run_and_wait(*command,
                                    run::job_environment(env.variables, chosen),
                                    claim.descriptors(),
                                    [&](pid_t pid) noexcept {
                                        holder.pid = static_cast<int>(pid);
                                        (void)claim.record_holder(holder);
                                    });
    if (!status) {
        return tl::unexpected(status.error());
    }
    acquired.reset(); // release our copy of the claim before ending like the job
    run::exit_as(*status);
}

} // namespace withgpu::app
