// The queue on disk: one ticket file per waiting with-gpu process in the lock
// directory, "queue-<seq>.ticket", held with flock(LOCK_EX) by its waiter for as
// long as it waits. A dead waiter's ticket is therefore unlocked, recognised as
// dead, and removed by the next reader: it never blocks the queue. A waiter that can tell
// when it is stopped (the CLI, on Ctrl-Z) also holds a record lock on the ticket's first
// byte, its "awake" lock, and lets it go just before it stops: whoever waits behind it
// learns at once instead of at its next check (docs/design/queue.md, "Stopped waiters").
// What a ticket says is queue/'s business; this module only stores and finds the text.
#pragma once

#include "lock/lock_dir.hpp"
#include "lock/pending_lock.hpp"
#include "os/fd.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace withgpu::lock {

struct TicketRecord {
    std::uint64_t seq = 0;
    std::string text;
};

// Tickets are numbered 1, 2, ... and never beyond this: far more than any real queue can
// use, and far from wrapping. A file numbered higher is not a ticket (docs/design/queue.md).
inline constexpr std::uint64_t max_ticket_seq = std::uint64_t{1} << 62;

// The number for a new ticket: one more than the largest live ticket's (1 when there is
// none), skipping numbers whose file exists (`present`: dead tickets we may not remove).
// nullopt when that would exceed max_ticket_seq. Pure; exposed for tests.
[[nodiscard]] std::optional<std::uint64_t>
next_ticket_seq(const std::vector<std::uint64_t>& live, const std::vector<std::uint64_t>& present);

// Our place in the queue. Move-only; leaves the queue on destruction.
class QueueTicket {
  public:
    // Creates the next ticket (seq: next_ticket_seq over the tickets present; a number taken
    // meanwhile is skipped), locked and holding the text `text_for(seq)` before its name
    // appears. Call with the DecisionLock held exclusively, which keeps the numbering in
    // arrival order (docs/design/queue.md). With `tells_when_stopped`, the ticket also
    // carries the awake lock, which pause() and resume() let go and take again.
    [[nodiscard]] static Result<QueueTicket>
    enter(const LockDir& dir,
          const std::function<std::string(std::uint64_t)>& text_for,
          bool tells_when_stopped = false);

    QueueTicket(QueueTicket&& other) noexcept;
    QueueTicket& operator=(QueueTicket&& other) noexcept;
    QueueTicket(const QueueTicket&) = delete;
    QueueTicket& operator=(const QueueTicket&) = delete;
    ~QueueTicket() { leave(); }

    [[nodiscard]] std::uint64_t seq() const noexcept { return m_seq; }
    [[nodiscard]] const std::string& file_name() const noexcept { return m_name; }

    // Unlinks the file, then closes it: a reader either finds no file or a locked one.
    // Idempotent.
    void leave() noexcept;

    // About to stop: lets the awake lock go, which wakes whoever waits behind this ticket.
    // The ticket stays live (its flock is kept). Nothing without the awake lock.
    void pause() noexcept;
    // Running again: takes the awake lock back (waiting the moment a waiter behind takes to
    // look and let its shared lock go).
    void resume() noexcept;

  private:
    QueueTicket(int dir_fd, std::uint64_t seq, std::string name, Fd fd, bool awake)
        : m_dir_fd(dir_fd), m_seq(seq), m_name(std::move(name)), m_fd(std::move(fd)),
          m_tells(awake) {}
    int m_dir_fd = -1; // borrowed from the LockDir, which outlives the ticket
    std::uint64_t m_seq = 0;
    std::string m_name;
    Fd m_fd;
    bool m_tells = false;  // holds the awake lock while running
    bool m_paused = false; // let it go (pause) and not taken back yet
};

// The live tickets in arrival order, only those numbered below `before` when it is given.
// Removes the files of dead waiters on the way (where the directory lets us). Files named like
// tickets that cannot be one (a symlink, a FIFO, unreadable) are skipped, each with a line in
// `notes` (when given) that names it; names that are not canonical ("queue-<20 digits>.ticket")
// are no tickets at all. Call with a DecisionLock held (shared is enough).
[[nodiscard]] Result<std::vector<TicketRecord>>
read_queue(const LockDir& dir,
           std::vector<std::string>* notes = nullptr,
           std::optional<std::uint64_t> before = std::nullopt);

// The live ones of the tickets numbered `seqs`, in arrival order, found by name: the directory
// is not listed, so the cost does not grow with the queue. Otherwise like read_queue. For a
// waiter that knows which tickets can be ahead of its own (docs/design/queue.md).
[[nodiscard]] std::vector<TicketRecord> read_tickets(const LockDir& dir,
                                                     const std::vector<std::uint64_t>& seqs,
                                                     std::vector<std::string>* notes = nullptr);

// Waiting behind a live ticket: `lock` becomes ready when its waiter leaves (or dies), and,
// when `tells_when_stopped`, also when it is about to stop (its awake lock was let go; the
// ticket is still live then). Without the awake lock (a library caller, an older with-gpu, or
// a waiter stopped already) only leaving wakes it, and the caller checks now and then whether
// that waiter was stopped.
struct TicketWait {
    PendingLock lock;
    bool tells_when_stopped = false;
};

// Starts waiting behind the waiter holding ticket `seq`: nullopt when it has left already (the
// ticket is gone, unlocked, or replaced by something that is not a ticket). Costs nothing
// while it waits.
[[nodiscard]] Result<std::optional<TicketWait>> wait_for_ticket(const LockDir& dir,
                                                                std::uint64_t seq);

// "queue-00000000000000000042.ticket"
[[nodiscard]] std::string ticket_file_name(std::uint64_t seq);

} // namespace withgpu::lock
