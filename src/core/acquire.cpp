#include "core/acquire.hpp"

#include "core/decision_lock.hpp"
#include "core/look.hpp"
#include "core/machine.hpp"
#include "lock/queue_files.hpp"
#include "lock/release_watch.hpp"
#include "procfs/process_info.hpp"
#include "queue/ticket.hpp"
#include "report/decision_report.hpp"
#include "report/waiting_report.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace withgpu::core {

namespace {

using Clock = std::chrono::steady_clock;
using Mode = lock::DecisionLock::Mode;
using Outcome = selection::Decision::Outcome;

// A momentary NVML error must not cost a waiter its place in line: the snapshot is tried
// again, with back-off (poll, 2 x poll, ... at most 30s apart), and the wait ends only after
// this many failures in a row. The ticket is kept meanwhile.
constexpr unsigned k_snapshot_attempts = 5;

Error no_choice_error(const selection::Decision& decision) {
    if (decision.outcome == Outcome::impossible) {
        return Error{ErrorKind::impossible,
                     fmt::format("this request can never be met on this machine: {}\n{}",
                                 decision.summary,
                                 report::rejection_lines(decision)),
                     "relax the request (see with-gpu --dry-run for every GPU's reasons)"};
    }
    return Error{ErrorKind::no_gpu_now,
                 fmt::format("no suitable GPU is free now: {}\n{}",
                             decision.summary,
                             report::rejection_lines(decision)),
                 "add --wait to wait in line, or relax the request (with-gpu --status shows "
                 "who uses which GPU)"};
}

// A with-gpu started inside another with-gpu's command inherits that launch's claim
// descriptors, and a program that took a claim through the library holds it: waiting for one
// of those GPUs would wait forever for itself. If a GPU it could use is held that way, it
// fails at once (docs/design/locking.md, "Nested launches").
std::vector<std::string> held_by_this_process(const lock::LockDir& dir,
                                              const gpu::MachineSnapshot& machine,
                                              const selection::Decision& decision) {
    const auto open_files = procfs::open_files();
    std::vector<std::string> held;
    for (const auto& verdict : decision.verdicts) {
        const bool never = std::any_of(verdict.rejections.begin(),
                                       verdict.rejections.end(),
                                       [](const selection::Rejection& r) { return r.permanent; });
        const gpu::GpuSnapshot* g = machine.find(verdict.index);
        if (never || g == nullptr || g->uuid.empty()) {
            continue;
        }
        struct stat info {};
        if (::fstatat(dir.fd(),
                      lock::lock_file_name(g->uuid, ::geteuid()).c_str(),
                      &info,
                      AT_SYMLINK_NOFOLLOW) != 0) {
            continue; // never claimed
        }
        const procfs::FileId id{info.st_dev, info.st_ino};
        if (std::find(open_files.begin(), open_files.end(), id) != open_files.end()) {
            held.push_back(fmt::format("GPU {}", verdict.index));
        }
    }
    return held;
}

// Whether `fd` is readable now, without waiting.
bool readable_now(int fd) {
    pollfd polled{fd, POLLIN, 0};
    return ::poll(&polled, 1, 0) > 0 && (polled.revents & POLLIN) != 0;
}

// How many GPUs the request could ever get: those without a reason that never changes.
std::size_t ever_usable(const selection::Decision& decision) {
    return static_cast<std::size_t>(
        std::count_if(decision.verdicts.begin(), decision.verdicts.end(), [](const auto& verdict) {
            return std::none_of(verdict.rejections.begin(),
                                verdict.rejections.end(),
                                [](const selection::Rejection& r) { return r.permanent; });
        }));
}

Error held_already_error(const std::vector<std::string>& held, Waiting::Caller caller) {
    if (caller == Waiting::Caller::library) {
        return Error{ErrorKind::failed,
                     fmt::format("this process already holds the claim on {} (a lease it has "
                                 "not released, or one inherited from the with-gpu that "
                                 "started it); it cannot claim that again (it would wait for "
                                 "itself)",
                                 fmt::join(held, ", ")),
                     "use the GPUs it holds, or release that lease first"};
    }
    return Error{ErrorKind::failed,
                 fmt::format("this with-gpu runs inside the command of another with-gpu, which "
                             "holds {} for it; a nested with-gpu cannot claim its parent's GPUs "
                             "(it would wait for itself)",
                             fmt::join(held, ", ")),
                 "the command already has those GPUs (CUDA_VISIBLE_DEVICES, WITH_GPU_UUIDS): "
                 "run it directly, or ask the outer with-gpu for every GPU the job needs"};
}

// One acquire() call: the state of the loop, and its steps as functions.
class Acquisition {
  public:
    Acquisition(const selection::Request& request,
                const Waiting& waiting,
                const Identity& who,
                const nvml::Nvml& nvml,
                gpu::MachineSnapshot machine,
                const lock::LockDir& dir,
                const Hooks& hooks)
        : m_request(request), m_waiting(waiting), m_who(who), m_nvml(nvml),
          m_machine(std::move(machine)), m_dir(dir), m_hooks(hooks), m_started(hooks.clock.now()),
          m_snapshot_taken(m_started) {
        if (waiting.wait && waiting.timeout) {
            m_deadline = m_started + *waiting.timeout;
        }
    }

    Result<Acquired> run();

  private:
    struct Look {
        lock::DecisionLock lock;
        queue::Turn turn;
    };
    Result<Look> look_holding(Mode mode);
    Result<std::optional<Acquired>> claim_if_our_turn(queue::Turn& turn);
    [[nodiscard]] bool foreign_process_appeared(const selection::Decision& decision);
    Result<void> enter_queue();
    Result<void> wait_for_change(const queue::Turn& turn);
    Result<bool> wait_behind(std::uint64_t seq, int pid, const report::WaitingState& state);
    Result<bool> watch_releases(const report::WaitingState& state);
    enum class Slept { woken, until_passed, continued };
    Result<Slept> sleep_until(int fd, Clock::time_point until, const report::WaitingState* state);
    void stop_for_the_user();
    Result<void> read_machine_again();
    [[nodiscard]] Error timeout_error() const;
    [[nodiscard]] std::chrono::seconds waited() const {
        return std::chrono::duration_cast<std::chrono::seconds>(m_hooks.clock.now() - m_started);
    }

    const selection::Request& m_request;
    const Waiting& m_waiting;
    const Identity& m_who;
    const nvml::Nvml& m_nvml;
    gpu::MachineSnapshot m_machine;
    const lock::LockDir& m_dir;
    const Hooks& m_hooks;
    Clock::time_point m_started;
    std::optional<Clock::time_point> m_deadline;
    Clock::time_point m_snapshot_taken;
    Notes m_notes;
    std::vector<std::string> m_fresh_notes;
    std::optional<lock::ReleaseWatch> m_watch;
    lock::ClaimListing m_claim_files; // kept up to date by m_watch once we watch
    std::optional<lock::QueueTicket> m_ticket;
    QueuePlace m_place;             // our ticket and the tickets that may be ahead of it
    std::uint64_t m_seen_leave = 0; // the last ticket we saw leave (0: none; no ticket has 0)
    bool m_nested_checked = false;
    bool m_look_again = false; // a foreign process took a chosen GPU: choose again at once
};

Error Acquisition::timeout_error() const {
    const auto timeout = format_wait(m_waiting.timeout.value_or(std::chrono::milliseconds(0)));
    return Error{ErrorKind::timeout,
                 m_waiting.caller == Waiting::Caller::library
                     ? fmt::format("gave up waiting after the timeout, {}", timeout)
                     : fmt::format("gave up waiting after --timeout {}", timeout),
                 {}};
}

// Takes the decision lock in `mode` (many waiters may look at once under the shared lock) and
// looks; the lock is returned so that the caller decides how long it is held.
Result<Acquisition::Look> Acquisition::look_holding(Mode mode) {
    auto held = take_decision_lock(m_dir, mode, true, m_deadline, m_hooks);
    if (!held) {
        return tl::unexpected(held.error().kind == ErrorKind::timeout ? timeout_error()
                                                                      : held.error());
    }
    if (!held->note().empty()) {
        m_fresh_notes.push_back(held->note());
    }
    auto seen = look(m_dir,
                     m_machine,
                     m_request,
                     m_place,
                     m_claim_files,
                     m_hooks.clock.unix_now(),
                     m_fresh_notes);
    m_notes.pass_on(m_fresh_notes, m_hooks.progress);
    if (!seen) {
        return tl::unexpected(seen.error());
    }
    return Look{std::move(*held), std::move(*seen)};
}

// It looks like our turn: under the exclusive lock, look again and claim. nullopt when it
// was not our turn after all (the turn is updated), or something outside the protocol took
// a GPU between look and claim.
Result<std::optional<Acquired>> Acquisition::claim_if_our_turn(queue::Turn& turn) {
    auto again = look_holding(Mode::exclusive);
    if (!again) {
        return tl::unexpected(again.error());
    }
    turn = std::move(again->turn);
    if (turn.decision.outcome != Outcome::chosen) {
        return std::optional<Acquired>();
    }
    std::vector<std::string> uuids;
    for (unsigned index : turn.decision.chosen) {
        uuids.push_back(m_machine.find(index)->uuid);
    }
    auto claim = lock::Claim::try_acquire(m_dir, uuids);
    if (!claim) {
        return tl::unexpected(claim.error());
    }
    if (!*claim) {
        m_claim_files.forget(); // taken after all: the next look lists the directory again
        return std::optional<Acquired>();
    }
    if (foreign_process_appeared(turn.decision)) {
        m_look_again = true; // the claim is released here; choose again on what NVML says now
        return std::optional<Acquired>();
    }
    if (m_ticket) {
        m_ticket->leave(); // under the exclusive lock: the next waiter sees us gone
        m_hooks.progress.note(fmt::format("{} after waiting {}",
                                          turn.decision.summary,
                                          format_wait(m_hooks.clock.now() - m_started)));
    }
    return std::optional<Acquired>(Acquired{
        std::move(**claim), std::move(m_machine), std::move(turn.decision), std::move(m_watch)});
}

// A program started without with-gpu may have taken a chosen GPU between the NVML read and
// the claim. A second look at the chosen GPUs' process lists only (a few NVML calls) finds
// it; the GPU's entry in the snapshot is then updated, so that choosing again sees it.
bool Acquisition::foreign_process_appeared(const selection::Decision& decision) {
    bool appeared = false;
    for (unsigned index : decision.chosen) {
        const auto entry =
            std::find_if(m_machine.gpus.begin(),
                         m_machine.gpus.end(),
                         [&](const gpu::GpuSnapshot& s) { return s.index == index; });
        gpu::GpuSnapshot* g = entry != m_machine.gpus.end() ? &*entry : nullptr;
        auto now = m_nvml.processes(index);
        if (g == nullptr || !now || !g->processes) {
            continue;
        }
        for (const auto& p : *now) {
            const bool known = std::any_of(g->processes->begin(),
                                           g->processes->end(),
                                           [&](const gpu::Process& q) { return q.pid == p.pid; });
            if (!known) {
                appeared = true;
                std::uint64_t used =
                    g->memory_used_bytes.value_or(0) + p.used_memory_bytes.value_or(0);
                g->memory_used_bytes = used;
                if (g->memory_total_bytes) {
                    g->memory_free_bytes =
                        *g->memory_total_bytes > used ? *g->memory_total_bytes - used : 0;
                }
                g->processes->push_back(p);
            }
        }
    }
    return appeared;
}

Result<void> Acquisition::enter_queue() {
    auto exclusive = take_decision_lock(m_dir, Mode::exclusive, true, m_deadline, m_hooks);
    if (!exclusive) {
        return tl::unexpected(exclusive.error().kind == ErrorKind::timeout ? timeout_error()
                                                                           : exclusive.error());
    }
    if (!exclusive->note().empty()) {
        m_fresh_notes.push_back(exclusive->note());
        m_notes.pass_on(m_fresh_notes, m_hooks.progress);
    }
    queue::Ticket mine;
    mine.pid = m_who.pid;
    mine.user = procfs::user_name(m_who.uid);
    mine.command = m_who.command;
    mine.since_unix = m_hooks.clock.unix_now();
    mine.request = m_request;
    auto entered = lock::QueueTicket::enter(
        m_dir,
        [&](std::uint64_t seq) {
            mine.seq = seq;
            return queue::encode(mine);
        },
        m_hooks.stop.possible());
    if (!entered) {
        return tl::unexpected(entered.error());
    }
    m_ticket = std::move(*entered);
    m_place.mine = m_ticket->seq();
    return {};
}

// Sleeps until `fd` is readable (woken) or `until` passes, redrawing the waiting line (when
// there is one) as often as the progress display wants. The deadline and a cancellation end
// it as errors. A stop the user asked for (Ctrl-Z) is taken here, between looks, never while
// the decision lock is held: the waiters behind us are told first, and once we are continued
// the caller looks again, since anything may have changed meanwhile.
Result<Acquisition::Slept>
Acquisition::sleep_until(int fd, Clock::time_point until, const report::WaitingState* state) {
    const auto redraw =
        state != nullptr ? m_hooks.progress.redraw_every() : std::chrono::milliseconds(0);
    for (;;) {
        auto wake = m_deadline ? std::min(until, *m_deadline) : until;
        if (redraw.count() > 0) {
            wake = std::min(wake, m_hooks.clock.now() + redraw);
        }
        const int fds[] = {fd, m_hooks.stop.fd};
        const Woken woken = wait_for(fds, wake, m_hooks.cancel, m_hooks.clock);
        if (woken == Woken::cancelled) {
            return tl::unexpected(cancelled_error());
        }
        if (woken == Woken::ready && m_hooks.stop.possible() && readable_now(m_hooks.stop.fd)) {
            stop_for_the_user();
            return Slept::continued;
        }
        if (woken == Woken::ready) {
            return Slept::woken;
        }
        const auto now = m_hooks.clock.now();
        if (m_deadline && now >= *m_deadline) {
            return tl::unexpected(timeout_error());
        }
        if (now >= until) {
            return Slept::until_passed;
        }
        m_hooks.progress.waiting(*state, waited()); // only the clock moved
    }
}

void Acquisition::stop_for_the_user() {
    if (m_ticket) {
        m_ticket->pause(); // wakes whoever waits behind us
    }
    m_hooks.stop.stop_now();
    if (m_ticket) {
        m_ticket->resume();
    }
}

// Nothing can change for us until the waiter holding `seq` leaves: sleep on its ticket's
// lock, waking to see whether it was stopped (then look again: it may be passed over). A
// waiter that tells before it stops wakes us itself; it is checked rarely, for SIGSTOP. True
// when it left.
Result<bool>
Acquisition::wait_behind(std::uint64_t seq, int pid, const report::WaitingState& state) {
    auto pending = lock::wait_for_ticket(m_dir, seq);
    if (!pending) {
        return tl::unexpected(pending.error());
    }
    if (!*pending) {
        return true;
    }
    const bool told = (*pending)->tells_when_stopped;
    const auto every = told ? queue::stop_check_when_told : queue::stop_check_when_untold;
    for (;;) {
        auto slept = sleep_until((*pending)->lock.ready_fd(), m_hooks.clock.now() + every, &state);
        if (!slept) {
            return tl::unexpected(slept.error());
        }
        if (*slept == Slept::woken && told) {
            pending->reset(); // our shared lock would keep it from taking its awake lock back
            return lock::read_tickets(m_dir, {seq}).empty(); // it left, or it is stopping
        }
        if (*slept == Slept::woken) {
            return true;
        }
        if (*slept == Slept::continued || waiter_process(pid) == queue::WaiterProcess::stopped) {
            return false;
        }
    }
}

// First in line for what we want: sleep until a claim ends or a ticket leaves (the release
// watch), or the poll period passes (programs outside with-gpu come and go). True when it is
// time to read the GPUs again.
Result<bool> Acquisition::watch_releases(const report::WaitingState& state) {
    auto until = m_snapshot_taken + m_waiting.poll;
    if (m_watch->degraded()) {
        until = std::min(until, m_hooks.clock.now() + lock::ReleaseWatch::degraded_interval);
    }
    for (;;) {
        auto slept = sleep_until(m_watch->fd(), until, &state);
        if (!slept) {
            return tl::unexpected(slept.error());
        }
        if (*slept != Slept::woken) {
            return true; // the poll period (or the degraded watch's interval) passed, or we
                         // were stopped for a while
        }
        // A claim that ends frees memory too. Other files' events (every look closes
        // decide.lock) are no news: keep sleeping.
        if (m_watch->take_events()) {
            return true;
        }
    }
}

Result<void> Acquisition::wait_for_change(const queue::Turn& turn) {
    if (m_ticket) {
        m_ticket->resume(); // in case taking the awake lock back failed after a stop
    }
    const report::WaitingState state = report::waiting_state(turn, m_request.min_gpus);
    m_hooks.progress.waiting(state, waited());
    bool refresh = false;
    if (turn.wait_behind && *turn.wait_behind != m_seen_leave) {
        auto left = wait_behind(*turn.wait_behind, turn.wait_behind_pid, state);
        if (!left) {
            return tl::unexpected(left.error());
        }
        // A ticket that left never comes back (numbers are not reused). Should a look name it
        // again all the same, we watch instead of returning here at once: no busy loop.
        if (*left) {
            m_seen_leave = *turn.wait_behind;
        }
        refresh = *left && m_hooks.clock.now() - m_snapshot_taken >= m_waiting.poll;
    } else if (!m_watch) {
        // Only a waiter that watches needs inotify: an instance each, of the 128 a user may
        // have. Opened now, and then we look again at once, which sees what was released
        // before; what is released after, the watch reports.
        m_watch.emplace(lock::ReleaseWatch::open(m_dir));
        m_claim_files = lock::ClaimListing(*m_watch);
    } else {
        auto due = watch_releases(state);
        if (!due) {
            return tl::unexpected(due.error());
        }
        refresh = *due;
    }
    return refresh ? read_machine_again() : Result<void>{};
}

Result<void> Acquisition::read_machine_again() {
    auto delay = m_waiting.poll;
    for (unsigned attempt = 1;; ++attempt) {
        auto fresh = read_machine(m_nvml, m_machine.figures);
        if (fresh) {
            m_machine = std::move(*fresh);
            m_snapshot_taken = m_hooks.clock.now();
            return {};
        }
        if (attempt == k_snapshot_attempts) {
            Error error = fresh.error();
            error.message = fmt::format(
                "gave up waiting: {} ({} failures in a row)", error.message, k_snapshot_attempts);
            return tl::unexpected(std::move(error));
        }
        m_hooks.progress.note(fmt::format("cannot read the GPUs: {}; trying again in {} ({} of {})",
                                          fresh.error().message,
                                          format_wait(delay),
                                          attempt,
                                          k_snapshot_attempts));
        auto slept = sleep_until(-1, m_hooks.clock.now() + delay, nullptr);
        if (!slept) {
            return tl::unexpected(slept.error());
        }
        delay = std::min<std::chrono::milliseconds>(delay * 2, std::chrono::seconds(30));
    }
}

Result<Acquired> Acquisition::run() {
    const bool library = m_waiting.caller == Waiting::Caller::library;
    for (;;) {
        auto first = look_holding(Mode::shared);
        if (!first) {
            return tl::unexpected(first.error());
        }
        first->lock.release();
        queue::Turn turn = std::move(first->turn);
        if (turn.decision.outcome == Outcome::chosen) {
            auto claimed = claim_if_our_turn(turn);
            if (!claimed || *claimed) {
                return claimed ? Result<Acquired>(std::move(**claimed))
                               : tl::unexpected(claimed.error());
            }
            if (std::exchange(m_look_again, false)) {
                continue;
            }
        }
        if (turn.decision.outcome == Outcome::impossible) {
            return tl::unexpected(no_choice_error(turn.decision));
        }
        if (!m_nested_checked && (m_waiting.wait || !library)) {
            m_nested_checked = true; // inherited claims and permanent reasons do not change
            auto held = held_by_this_process(m_dir, m_machine, turn.decision);
            // A nested command must not wait for its parent's GPUs at all; a program with a
            // lease may wait for other GPUs, as long as enough could ever be free without its own.
            if (!held.empty() &&
                (!library || ever_usable(turn.decision) < held.size() + m_request.min_gpus)) {
                return tl::unexpected(held_already_error(held, m_waiting.caller));
            }
        }
        if (!m_waiting.wait) {
            return tl::unexpected(no_choice_error(turn.decision));
        }
        auto step = m_ticket ? wait_for_change(turn) : enter_queue();
        if (!step) {
            return tl::unexpected(step.error());
        }
    }
}

} // namespace

std::string format_wait(std::chrono::nanoseconds waited) {
    using namespace std::chrono;
    if (waited < seconds(1)) {
        return fmt::format("{}ms", duration_cast<milliseconds>(waited).count());
    }
    if (waited < seconds(10)) {
        return fmt::format("{:.1f}s", duration<double>(waited).count());
    }
    return units::format_duration(duration_cast<seconds>(waited));
}

Result<Acquired> acquire(const selection::Request& request,
                         const Waiting& waiting,
                         const Identity& who,
                         const nvml::Nvml& nvml,
                         gpu::MachineSnapshot machine,
                         const lock::LockDir& dir,
                         const Hooks& hooks) {
    return Acquisition(request, waiting, who, nvml, std::move(machine), dir, hooks).run();
}

} // namespace withgpu::core
