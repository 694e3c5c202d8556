// --status: every GPU with its figures, processes and claim holder.
#include "app/acquire.hpp"
#include "app/commands.hpp"
#include "app/exit_code.hpp"
#include "lock/claim.hpp"
#include "nvml/nvml.hpp"
#include "report/status_report.hpp"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>

namespace withgpu::app {

Result<LockView> current_view(const std::string& lock_dir, const gpu::MachineSnapshot& machine) {
    if (!std::filesystem::exists(lock_dir)) {
        return LockView{};
    }
    auto dir = lock::LockDir::open(lock_dir, false);
    if (!dir) {
        return tl::unexpected(dir.error());
    }
    auto decision_lock = lock::DecisionLock::acquire(*dir, lock::DecisionLock::Mode::shared);
    if (!decision_lock) {
        return tl::unexpected(decision_lock.error());
    }
    auto claims = lock::read_claims(*dir, machine.uuids());
    if (!claims) {
        return tl::unexpected(claims.error());
    }
    auto queue = read_tickets(*dir);
    if (!queue) {
        return tl::unexpected(queue.error());
    }
    return LockView{std::move(*claims), std::move(*queue)};
}

Result<int> status_command(const cli::Options& options, const ProcessEnvironment& /*env*/) {
    auto nvml = nvml::Nvml::open(options.nvml_library);
    if (!nvml) {
        return tl::unexpected(nvml.error());
    }
    auto machine = nvml->snapshot();
    if (!machine) {
        return tl::unexpected(machine.error());
    }

    auto view = current_view(options.lock_dir, *machine);
    if (!view) {
        return tl::unexpected(view.error());
    }

    if (options.json) {
        fmt::print("{}\n", report::status_json(*machine, view->claims, view->queue).dump(2));
    } else {
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        fmt::print("{}", report::status_table(*machine, view->claims, view->queue, now));
    }
    return exit_ok;
}

} // namespace withgpu::app
