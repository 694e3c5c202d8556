// A waiter's place in the queue, as data: who waits, since when, for what.
// The on-disk form (one JSON line in the ticket file) is defined here; which
// file holds it and how it is locked is lock/'s business.
#pragma once

#include "selection/select.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace withgpu::queue {

struct Ticket {
    std::uint64_t seq = 0; // arrival order: smaller came first
    int pid = 0;           // the waiting with-gpu process
    std::string user;
    std::string command;
    std::int64_t since_unix = 0;
    selection::Request request; // what it waits for, so others can tell which GPUs it wants

    friend bool operator==(const Ticket&, const Ticket&) = default;
};

// One line of JSON. Everything but request.banned, whose GPUs are in request.exclude too: it
// only words the waiter's own reasons.
[[nodiscard]] std::string encode(const Ticket& ticket);

// ErrorKind::failed for anything that is not a ticket written by encode().
[[nodiscard]] Result<Ticket> decode(std::string_view text);

} // namespace withgpu::queue
