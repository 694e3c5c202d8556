#include "core/look.hpp"

#include "core/machine.hpp"
#include "lock/claim.hpp"
#include "lock/queue_files.hpp"
#include "procfs/process_info.hpp"

#include <algorithm>

namespace withgpu::core {

namespace {

std::vector<queue::Ticket> decode_all(const std::vector<lock::TicketRecord>& records) {
    std::vector<queue::Ticket> tickets;
    tickets.reserve(records.size());
    for (const auto& record : records) {
        if (auto ticket = queue::decode(record.text)) {
            ticket->seq = record.seq; // the file name is the authority on order
            tickets.push_back(std::move(*ticket));
        }
    }
    return tickets;
}

// The live tickets ahead of `place.mine` (all of them when not in line), and what is learnt
// about which tickets can still be ahead.
Result<std::vector<queue::Ticket>>
read_earlier(const lock::LockDir& dir, QueuePlace& place, std::vector<std::string>& notes) {
    std::vector<lock::TicketRecord> records;
    if (place.mine && place.ahead) {
        records = lock::read_tickets(dir, *place.ahead, &notes);
    } else {
        auto listed = lock::read_queue(dir, &notes, place.mine);
        if (!listed) {
            return tl::unexpected(listed.error());
        }
        records = std::move(*listed);
    }
    if (place.mine) {
        std::vector<std::uint64_t> ahead;
        ahead.reserve(records.size());
        for (const auto& record : records) {
            ahead.push_back(record.seq);
        }
        place.ahead = std::move(ahead);
    }
    return decode_all(records);
}

} // namespace

Result<std::vector<queue::Ticket>> read_tickets(const lock::LockDir& dir,
                                                std::vector<std::string>& notes) {
    auto records = lock::read_queue(dir, &notes);
    if (!records) {
        return tl::unexpected(records.error());
    }
    return decode_all(*records);
}

Result<queue::Turn> look(const lock::LockDir& dir,
                         const gpu::MachineSnapshot& machine,
                         const selection::Request& request,
                         QueuePlace& place,
                         lock::ClaimListing& claim_files,
                         std::int64_t now_unix,
                         std::vector<std::string>& notes) {
    auto tickets = read_earlier(dir, place, notes);
    if (!tickets) {
        return tl::unexpected(tickets.error());
    }
    std::vector<queue::Ticket> earlier;
    for (auto& t : *tickets) {
        // Only a waiter in line past the grace period can be passed over: /proc is read for
        // those alone.
        if (queue::past_grace(t, now_unix) &&
            queue::passed_over(t, waiter_process(t.pid), now_unix)) {
            continue; // stopped (SIGSTOP, Ctrl-Z) past the grace period: not in our way
        }
        earlier.push_back(std::move(t));
    }
    auto claims = lock::read_claims(dir, machine.uuids(), claim_files, &notes);
    if (!claims) {
        return tl::unexpected(claims.error());
    }
    // Squatters on claimed GPUs are named in the reasons (--dry-run, the waiting line). Only
    // processes on claimed GPUs cost a look at /proc, and only when there are some.
    const bool any = std::any_of(machine.gpus.begin(), machine.gpus.end(), [&](const auto& g) {
        return g.processes && !g.processes->empty() && claims->count(g.uuid) != 0;
    });
    if (any) {
        gpu::MachineSnapshot marked = machine;
        if (!machine.figures.process_details) {
            add_process_details(marked, &*claims); // who they are matters on claimed GPUs only
        }
        join_claims(marked, *claims);
        return queue::take_turn(marked, earlier, request, *claims, now_unix);
    }
    return queue::take_turn(machine, earlier, request, *claims, now_unix);
}

queue::WaiterProcess waiter_process(int pid) {
    const auto state = procfs::process_state(static_cast<pid_t>(pid));
    if (!state) {
        return queue::WaiterProcess::unknown;
    }
    return *state == 'T' || *state == 't' ? queue::WaiterProcess::stopped
                                          : queue::WaiterProcess::running;
}

} // namespace withgpu::core
