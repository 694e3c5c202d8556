#include "app/acquire.hpp"

#include "app/common.hpp"
#include "app/machine.hpp"
#include "app/wait_signals.hpp"
#include "lock/queue_files.hpp"
#include "os/clock.hpp"
#include "procfs/process_info.hpp"
#include "report/decision_report.hpp"
#include "report/waiting_report.hpp"
#include "term/printer.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace withgpu::app {

namespace {

using Clock = std::chrono::steady_clock;

// "350ms", "4.2s", "2m05s": waits are often short, and "0s" would say nothing.
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
                 "add --wait to wait in line, or relax the request (with-gpu --status shows "
                 "who uses which GPU)"};
}

queue::WaiterProcess waiter_process(int pid) {
    const auto state = procfs::process_state(static_cast<pid_t>(pid));
    if (!state) {
        return queue::WaiterProcess::unknown;
    }
    return *state == 'T' || *state == 't' ? queue::WaiterProcess::stopped
                                          : queue::WaiterProcess::running;
}

// Wakes a waiter blocked behind another one now and then (SIGALRM, whose handler
// WaitSignals installs), so that it notices that waiter being stopped. A POSIX timer, apart
// from the ITIMER_REAL that WaitSignals uses for the deadline and the redraw.
class WakeTimer {
  public:
    WakeTimer() {
        sigevent event{};
        event.sigev_notify = SIGEV_SIGNAL;
        event.sigev_signo = SIGALRM;
        m_valid = ::timer_create(CLOCK_MONOTONIC, &event, &m_id) == 0;
    }
    WakeTimer(const WakeTimer&) = delete;
    WakeTimer& operator=(const WakeTimer&) = delete;
    ~WakeTimer() {
        if (m_valid) {
            ::timer_delete(m_id);
        }
    }
    // One shot after `after`; zero disarms.
    void arm(std::chrono::seconds after) {
        itimerspec spec{};
        spec.it_value.tv_sec = static_cast<time_t>(after.count());
        if (m_valid) {
            ::timer_settime(m_id, 0, &spec, nullptr);
        }
    }

  private:
    timer_t m_id{};
    bool m_valid = false;
};

// The progress display on stderr: one line redrawn in place on a terminal; on anything else,
// a line only when the reason for waiting changes. Nothing with -q.
class Progress {
  public:
    explicit Progress(bool quiet) : m_quiet(quiet), m_printer(stderr, /*colors_allowed=*/false) {}
    [[nodiscard]] bool tty() const { return m_printer.is_terminal(); }

    void show(const queue::Turn& turn, unsigned needed, std::chrono::seconds waited) {
        if (m_quiet) {
            return;
        }
        const report::WaitingState state = report::waiting_state(turn, needed);
        if (tty()) {
            m_printer.redraw_line("with-gpu: " + report::waiting_line(state, waited));
        } else if (!m_last_printed || !report::same_but_ages(*m_last_printed, state)) {
            // A claim growing older ("for 1s" -> "for 3s") is not news worth a line.
            m_printer.print_line("with-gpu: " + report::waiting_line(state, std::nullopt));
            m_last_printed = state;
        }
    }

    // A line of its own (the redrawn line, if any, is cleared first).
    void note(const std::string& what) {
        if (!m_quiet) {
            m_printer.print_line("with-gpu: " + what);
        }
    }

  private:
    bool m_quiet;
    term::Printer m_printer;
    std::optional<report::WaitingState> m_last_printed; // off a terminal
};

// A with-gpu started inside another with-gpu's command inherits that launch's claim
// descriptors, so it holds those claims itself: waiting for one of those GPUs would wait
// forever for its own parent. If a GPU it could use is held that way, it fails at once
// (docs/design/locking.md, "Nested launches").
std::optional<Error> nested_launch_error(const lock::LockDir& dir,
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
    if (held.empty()) {
        return std::nullopt;
    }
    return Error{ErrorKind::environment,
                 fmt::format("this with-gpu runs inside the command of another with-gpu, which "
                             "holds {} for it; a nested with-gpu cannot claim its parent's GPUs "
                             "(it would wait for itself)",
                             fmt::join(held, ", ")),
                 "the command already has those GPUs (CUDA_VISIBLE_DEVICES, WITH_GPU_UUIDS): "
                 "run it directly, or ask the outer with-gpu for every GPU the job needs"};
}

// A momentary NVML error must not cost a waiter its place in line: the snapshot is tried
// again, with back-off (poll, 2 x poll, ... at most 30s apart), and the wait ends only after
// k_snapshot_attempts failures in a row. The ticket is kept meanwhile.
constexpr unsigned k_snapshot_attempts = 5;

Result<gpu::MachineSnapshot>
snapshot_with_retries(const nvml::Nvml& nvml, std::chrono::milliseconds poll, Progress& progress) {
    auto delay = poll;
    for (unsigned attempt = 1;; ++attempt) {
        auto fresh = read_machine(nvml);
        if (fresh) {
            return fresh;
        }
        if (attempt == k_snapshot_attempts) {
            Error error = fresh.error();
            error.message = fmt::format(
                "gave up waiting: {} ({} failures in a row)", error.message, k_snapshot_attempts);
            return tl::unexpected(std::move(error));
        }
        progress.note(fmt::format("cannot read the GPUs: {}; trying again in {} ({} of {})",
                                  fresh.error().message,
                                  format_wait(delay),
                                  attempt,
                                  k_snapshot_attempts));
        std::this_thread::sleep_for(delay); // resumed after the redraw tick's signal
        delay = std::min<std::chrono::milliseconds>(delay * 2, std::chrono::seconds(30));
    }
}

} // namespace

Result<std::vector<queue::Ticket>> read_tickets(const lock::LockDir& dir,
                                                std::vector<std::string>& notes) {
    auto records = lock::read_queue(dir, &notes);
    if (!records) {
        return tl::unexpected(records.error());
    }
    std::vector<queue::Ticket> tickets;
    for (const auto& record : *records) {
        if (auto ticket = queue::decode(record.text)) {
            ticket->seq = record.seq; // the file name is the authority on order
            tickets.push_back(std::move(*ticket));
        }
    }
    return tickets;
}

Result<queue::Turn> look(const lock::LockDir& dir,
                         const gpu::MachineSnapshot& machine,
                         const selection::Request& request,
                         std::optional<std::uint64_t> before_seq,
                         std::vector<std::string>& notes) {
    auto tickets = read_tickets(dir, notes);
    if (!tickets) {
        return tl::unexpected(tickets.error());
    }
    std::vector<queue::Ticket> earlier;
    const std::int64_t now = now_unix();
    for (auto& t : *tickets) {
        if (before_seq && t.seq >= *before_seq) {
            continue;
        }
        if (queue::passed_over(t, waiter_process(t.pid), now)) {
            continue; // stopped (SIGSTOP, Ctrl-Z) past the grace period: not in our way
        }
        earlier.push_back(std::move(t));
    }
    auto claims = lock::read_claims(dir, machine.uuids(), &notes);
    if (!claims) {
        return tl::unexpected(claims.error());
    }
    return queue::take_turn(machine, earlier, request, *claims, now);
}

Result<Acquired> acquire(const cli::Options& options,
                         const selection::Request& request,
                         const nvml::Nvml& nvml,
                         gpu::MachineSnapshot machine,
                         const lock::LockDir& dir) {
    const auto started = Clock::now();
    Progress progress(options.quiet);
    Notes notes(options.quiet);
    std::vector<std::string> fresh_notes;
    std::optional<WaitSignals> signals;
    if (options.wait) {
        // Armed before the first look: the deadline holds from the start, even while another
        // process holds the decision lock.
        std::optional<Clock::time_point> deadline;
        if (options.timeout) {
            deadline = started + *options.timeout;
        }
        signals.emplace(
            deadline,
            fmt::format("with-gpu: gave up waiting after --timeout {}\n",
                        format_wait(options.timeout.value_or(std::chrono::milliseconds(0)))),
            progress.tty() && !options.quiet);
    }
    std::optional<lock::ReleaseWatch> watch;
    std::optional<lock::QueueTicket> ticket;
    std::optional<WakeTimer> wake; // after `signals`: gone before SIGALRM's handler is
    std::uint64_t seen_leave = 0;  // the last ticket we saw leave (0: none; no ticket has 0)
    auto snapshot_taken = started;
    bool nested_checked = false;

    for (;;) {
        const std::optional<std::uint64_t> my_seq =
            ticket ? std::optional<std::uint64_t>(ticket->seq()) : std::nullopt;

        // Look under the shared lock (many waiters may look at once); only if it is our
        // turn, take the exclusive lock, look again and claim.
        // Takes the decision lock in `mode` and looks; the lock is returned so that the
        // caller decides how long it is held.
        auto look_holding = [&](lock::DecisionLock::Mode mode)
            -> Result<std::pair<lock::DecisionLock, queue::Turn>> {
            auto held = lock::DecisionLock::acquire(dir, mode);
            if (!held) {
                return tl::unexpected(held.error());
            }
            if (!held->note().empty()) {
                fresh_notes.push_back(held->note());
            }
            auto seen = look(dir, machine, request, my_seq, fresh_notes);
            notes.print(fresh_notes);
            if (!seen) {
                return tl::unexpected(seen.error());
            }
            return std::pair{std::move(*held), std::move(*seen)};
        };

        auto first = look_holding(lock::DecisionLock::Mode::shared);
        if (!first) {
            return tl::unexpected(first.error());
        }
        first->first.release();
        queue::Turn turn = std::move(first->second);
        if (turn.decision.outcome == selection::Decision::Outcome::chosen) {
            auto again = look_holding(lock::DecisionLock::Mode::exclusive);
            if (!again) {
                return tl::unexpected(again.error());
            }
            turn = std::move(again->second);
            if (turn.decision.outcome == selection::Decision::Outcome::chosen) {
                std::vector<std::string> uuids;
                for (unsigned index : turn.decision.chosen) {
                    uuids.push_back(machine.find(index)->uuid);
                }
                auto claim = lock::Claim::try_acquire(dir, uuids);
                if (!claim) {
                    return tl::unexpected(claim.error());
                }
                if (*claim) {
                    if (signals) {
                        signals->disarm_ticket();
                    }
                    if (ticket) {
                        ticket->leave(); // under the exclusive lock: the next waiter sees us gone
                        progress.note(fmt::format("{} after waiting {}",
                                                  turn.decision.summary,
                                                  format_wait(Clock::now() - started)));
                    }
                    return Acquired{
                        std::move(**claim), std::move(machine), std::move(turn.decision)};
                }
                // Claimed by something outside the protocol between look and claim: look again.
            }
        }
        if (turn.decision.outcome == selection::Decision::Outcome::impossible) {
            return tl::unexpected(no_choice_error(turn.decision));
        }
        if (!nested_checked) {
            nested_checked = true; // inherited claims and permanent reasons do not change
            if (auto nested = nested_launch_error(dir, machine, turn.decision)) {
                return tl::unexpected(std::move(*nested));
            }
        }
        if (!options.wait) {
            return tl::unexpected(no_choice_error(turn.decision));
        }

        if (!ticket) {
            watch.emplace(lock::ReleaseWatch::open(dir));
            wake.emplace();
            auto exclusive = lock::DecisionLock::acquire(dir, lock::DecisionLock::Mode::exclusive);
            if (!exclusive) {
                return tl::unexpected(exclusive.error());
            }
            if (!exclusive->note().empty()) {
                fresh_notes.push_back(exclusive->note());
                notes.print(fresh_notes);
            }
            queue::Ticket mine;
            mine.pid = static_cast<int>(::getpid());
            mine.user = procfs::user_name(::getuid());
            mine.command = join_command(options.command);
            mine.since_unix = now_unix();
            mine.request = request;
            auto entered = lock::QueueTicket::enter(dir, [&](std::uint64_t seq) {
                mine.seq = seq;
                return queue::encode(mine);
            });
            if (!entered) {
                return tl::unexpected(entered.error());
            }
            ticket = std::move(*entered);
            signals->arm_ticket(dir.fd(), ticket->file_name());
            continue; // look again, now with our place in line
        }

        const auto waited =
            std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started);
        progress.show(turn, request.min_gpus, waited);
        signals->rearm_timer();

        bool refresh = false;
        if (turn.wait_behind && *turn.wait_behind != seen_leave) {
            // Nothing can change for us until that waiter leaves: sleep on its ticket's lock,
            // waking now and then to see whether it was stopped (then look again: it may
            // be passed over) or, on a terminal, to redraw.
            Result<bool> left = false;
            for (bool again = true; again;) {
                wake->arm(queue::stopped_waiter_grace / 2);
                left = lock::wait_for_ticket(dir, *turn.wait_behind);
                wake->arm(std::chrono::seconds(0));
                if (!left) {
                    return tl::unexpected(left.error());
                }
                again = !*left && !progress.tty() &&
                        waiter_process(turn.wait_behind_pid) != queue::WaiterProcess::stopped;
            }
            // A ticket that left never comes back (numbers are not reused). Should a look
            // name it again all the same, we watch instead of returning here at once: no
            // busy loop is possible.
            if (*left) {
                seen_leave = *turn.wait_behind;
            }
            refresh = *left && Clock::now() - snapshot_taken >= options.poll;
        } else {
            const auto until_poll = std::chrono::duration_cast<std::chrono::milliseconds>(
                options.poll - (Clock::now() - snapshot_taken));
            const bool event = watch->wait(std::max(until_poll, std::chrono::milliseconds(0)));
            // A claim that ends frees memory too; a poll period reveals programs outside
            // with-gpu that came or went.
            refresh = event || Clock::now() - snapshot_taken >= options.poll;
        }
        if (refresh) {
            auto fresh = snapshot_with_retries(nvml, options.poll, progress);
            if (!fresh) {
                return tl::unexpected(fresh.error());
            }
            machine = std::move(*fresh);
            snapshot_taken = Clock::now();
        }
    }
}

} // namespace withgpu::app
