// --status: every GPU with its figures, processes and claim holder.
#include "app/commands.hpp"
#include "app/exit_code.hpp"
#include "lock/claim.hpp"
#include "nvml/nvml.hpp"
#include "report/status_report.hpp"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>

namespace withgpu::app {

Result<gpu::ClaimMap> current_claims(const std::string& lock_dir,
                                     const gpu::MachineSnapshot& machine) {
    if (!std::filesystem::exists(lock_dir)) {
        return gpu::ClaimMap{};
    }
    auto dir = lock::LockDir::open(lock_dir, false);
    if (!dir) {
        return tl::unexpected(dir.error());
    }
    auto decision_lock = lock::DecisionLock::acquire(*dir, lock::DecisionLock::Mode::shared);
    if (!decision_lock) {
        return tl::unexpected(decision_lock.error());
    }
    return lock::read_claims(*dir, machine.uuids());
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

    auto claims = current_claims(options.lock_dir, *machine);
    if (!claims) {
        return tl::unexpected(claims.error());
    }

    if (options.json) {
        fmt::print("{}\n", report::status_json(*machine, *claims).dump(2));
    } else {
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        fmt::print("{}", report::status_table(*machine, *claims, now));
    }
    return exit_ok;
}

} // namespace withgpu::app
