#include "queue/turn.hpp"

#include "util/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace withgpu::queue {

std::set<std::string> usable_gpus(const gpu::MachineSnapshot& machine,
                                  const selection::Request& request) {
    // Claims and time play no part in what is permanent.
    const selection::Decision decision = selection::select(machine, request, {}, 0);
    std::set<std::string> usable;
    for (const auto& verdict : decision.verdicts) {
        const bool permanent =
            std::any_of(verdict.rejections.begin(),
                        verdict.rejections.end(),
                        [](const selection::Rejection& r) { return r.permanent; });
        const gpu::GpuSnapshot* g = machine.find(verdict.index);
        if (!permanent && g != nullptr && !g->uuid.empty()) {
            usable.insert(g->uuid);
        }
    }
    return usable;
}

bool past_grace(const Ticket& ticket, std::int64_t now_unix, std::chrono::seconds grace) {
    return now_unix - ticket.since_unix >= grace.count();
}

bool passed_over(const Ticket& ticket,
                 WaiterProcess process,
                 std::int64_t now_unix,
                 std::chrono::seconds grace) {
    return process == WaiterProcess::stopped && past_grace(ticket, now_unix, grace);
}

std::string ordinal(unsigned n) {
    const unsigned last_two = n % 100;
    const char* suffix = "th";
    if (last_two < 11 || last_two > 13) {
        switch (n % 10) {
        case 1:
            suffix = "st";
            break;
        case 2:
            suffix = "nd";
            break;
        case 3:
            suffix = "rd";
            break;
        default:
            break;
        }
    }
    return fmt::format("{}{}", n, suffix);
}

Turn take_turn(const gpu::MachineSnapshot& machine,
               const std::vector<Ticket>& earlier,
               const selection::Request& mine,
               const gpu::ClaimMap& claims,
               std::int64_t now_unix) {
    const std::set<std::string> my_gpus = usable_gpus(machine, mine);

    selection::ReservedMap reserved;
    std::optional<std::uint64_t> latest_conflict;
    int latest_conflict_pid = 0;
    // Waiters in one queue mostly ask alike: the first few distinct requests are judged once
    // each (a look behind 1000 waiters used to run 1000 selections); more distinct ones are
    // judged one by one, so that comparing requests never costs more than judging them.
    constexpr std::size_t k_remembered = 8;
    std::vector<std::pair<const selection::Request*, std::set<std::string>>> judged;
    std::set<std::string> unremembered;
    for (std::size_t i = 0; i < earlier.size(); ++i) {
        const Ticket& ticket = earlier[i];
        const auto known = std::find_if(judged.begin(), judged.end(), [&](const auto& j) {
            return *j.first == ticket.request;
        });
        const std::set<std::string>* theirs = nullptr;
        if (known != judged.end()) {
            theirs = &known->second;
        } else if (judged.size() < k_remembered) {
            theirs =
                &judged.emplace_back(&ticket.request, usable_gpus(machine, ticket.request)).second;
        } else {
            unremembered = usable_gpus(machine, ticket.request);
            theirs = &unremembered;
        }
        bool conflicts = false;
        for (const auto& uuid : *theirs) {
            // The earliest waiter that wants a GPU is the one named in the reason.
            if (reserved.count(uuid) == 0) {
                reserved.emplace(
                    uuid,
                    fmt::format("wanted by {} waiting before us ({} in queue, pid {})",
                                ticket.user.empty() ? "a job" : text::printable(ticket.user),
                                ordinal(static_cast<unsigned>(i + 1)),
                                ticket.pid));
            }
            conflicts = conflicts || my_gpus.count(uuid) > 0;
        }
        if (conflicts) {
            latest_conflict = ticket.seq;
            latest_conflict_pid = ticket.pid;
        }
    }

    Turn turn;
    turn.position = static_cast<unsigned>(earlier.size() + 1);
    turn.decision = selection::select(machine, mine, claims, now_unix, reserved);
    const bool some_gpu_is_ours =
        std::any_of(my_gpus.begin(), my_gpus.end(), [&](const std::string& uuid) {
            return reserved.count(uuid) == 0;
        });
    if (!some_gpu_is_ours) {
        turn.wait_behind = latest_conflict;
        turn.wait_behind_pid = latest_conflict_pid;
    }
    return turn;
}

} // namespace withgpu::queue
