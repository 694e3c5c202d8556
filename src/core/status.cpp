#include "core/status.hpp"

#include "core/decision_lock.hpp"
#include "core/look.hpp"
#include "lock/claim.hpp"
#include "lock/lock_dir.hpp"
#include "report/status_json.hpp"

#include <filesystem>

namespace withgpu::core {

namespace {

// The lock directory, when there is one, with the decision lock held shared.
struct OpenedForLooking {
    lock::LockDir dir;
    lock::DecisionLock lock;
};

Result<std::optional<OpenedForLooking>>
open_for_looking(const std::string& lock_dir, const Hooks& hooks, std::vector<std::string>& notes) {
    std::error_code missing;
    if (!std::filesystem::exists(lock_dir, missing)) {
        return std::optional<OpenedForLooking>();
    }
    auto dir = lock::LockDir::open(lock_dir, false);
    if (!dir) {
        return tl::unexpected(dir.error());
    }
    // Looking creates nothing: without decide.lock there is no decision to wait for.
    auto shared = take_decision_lock(
        *dir, lock::DecisionLock::Mode::shared, /*create=*/false, std::nullopt, hooks);
    if (!shared) {
        return tl::unexpected(shared.error());
    }
    if (!shared->note().empty()) {
        notes.push_back(shared->note());
    }
    return std::optional<OpenedForLooking>(OpenedForLooking{std::move(*dir), std::move(*shared)});
}

} // namespace

Result<LockView>
current_view(const std::string& lock_dir, const gpu::MachineSnapshot& machine, const Hooks& hooks) {
    LockView view;
    auto opened = open_for_looking(lock_dir, hooks, view.notes);
    if (!opened || !*opened) {
        return opened ? Result<LockView>(std::move(view)) : tl::unexpected(opened.error());
    }
    auto claims = lock::read_claims((*opened)->dir, machine.uuids(), &view.notes);
    if (!claims) {
        return tl::unexpected(claims.error());
    }
    auto queue = read_tickets((*opened)->dir, view.notes);
    if (!queue) {
        return tl::unexpected(queue.error());
    }
    view.claims = std::move(*claims);
    view.queue = std::move(*queue);
    return view;
}

nlohmann::json status_document(const gpu::MachineSnapshot& machine,
                               const LockView& view,
                               const std::optional<slurm::Allocation>& allocation) {
    auto doc = report::status_json(machine, view.claims, view.queue);
    doc["slurm"] =
        allocation ? slurm::allocation_json(*allocation, machine) : nlohmann::json(nullptr);
    return doc;
}

Result<selection::Decision> decide_now(const std::string& lock_dir,
                                       const gpu::MachineSnapshot& machine,
                                       const selection::Request& request,
                                       const Hooks& hooks) {
    std::vector<std::string> fresh;
    auto opened = open_for_looking(lock_dir, hooks, fresh);
    if (!opened) {
        return tl::unexpected(opened.error());
    }
    Notes notes;
    if (!*opened) {
        return selection::select(machine, request, {}, hooks.clock.unix_now());
    }
    QueuePlace newcomer;
    lock::ClaimListing claim_files;
    auto turn = look(
        (*opened)->dir, machine, request, newcomer, claim_files, hooks.clock.unix_now(), fresh);
    notes.pass_on(fresh, hooks.progress);
    if (!turn) {
        return tl::unexpected(turn.error());
    }
    return std::move(turn->decision);
}

} // namespace withgpu::core
