// Claims on GPUs: one lock file per physical GPU and user, keyed by UUID and uid,
// taken with flock(2). See docs/design/locking.md for the protocol, why it cannot
// leave a stale claim behind, and why no other user can defeat it.
#pragma once

#include "gpu/claim.hpp"
#include "lock/lock_dir.hpp"
#include "lock/pending_lock.hpp"
#include "lock/release_watch.hpp"
#include "os/fd.hpp"
#include "util/error.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace withgpu::lock {

// Serialises decisions: a with-gpu process holds it exclusively while it looks at the
// claims, selects and claims; `--status` holds it shared while it reads the claims, so it
// never sees (or disturbs) a half-made decision. Held for milliseconds; taking it can be
// waited for, bounded and cancelled (core/decision_lock.hpp), since its holder may be stopped.
//
// It serves fairness and tidiness, not exclusion (a claim is exclusive without it), so a
// decide.lock that cannot be used (planted as a FIFO, a symlink, unreadable) does not stop
// anybody: the lock is then not held and note() says why.
class DecisionLock {
  public:
    enum class Mode { exclusive, shared };
    // Starts taking it: held at once when nobody holds it in a conflicting mode, otherwise
    // pending (wait for ready_fd() to become readable, then finish()). `create`: make
    // decide.lock when missing. Without it (--status, --dry-run) a missing file means no lock
    // is needed: nothing is created and nothing is held.
    [[nodiscard]] static Result<DecisionLock>
    start(const LockDir& dir, Mode mode, bool create = true);
    // start(), then waits as long as it takes. For tools and tests; with-gpu itself bounds the
    // wait (core/decision_lock.hpp).
    [[nodiscard]] static Result<DecisionLock>
    acquire(const LockDir& dir, Mode mode, bool create = true);

    [[nodiscard]] bool pending() const noexcept { return m_pending.has_value(); }
    // While pending: readable once the lock is granted.
    [[nodiscard]] int ready_fd() const noexcept { return m_pending ? m_pending->ready_fd() : -1; }
    // While pending: true once the lock is held (then no longer pending).
    [[nodiscard]] Result<bool> finish();
    // Stops waiting and goes on without the lock; note() says `why`.
    void give_up(std::string why);
    // Releases early (idempotent); the destructor releases too.
    void release() noexcept {
        m_fd.reset();
        m_pending.reset();
    }
    // Why the lock is not held although decide.lock exists; empty when held (or not needed).
    [[nodiscard]] const std::string& note() const noexcept { return m_note; }

  private:
    DecisionLock(Fd fd, std::string note) : m_fd(std::move(fd)), m_note(std::move(note)) {}
    [[nodiscard]] static Result<DecisionLock> taking(Fd fd, int operation);
    Fd m_fd;
    std::optional<PendingLock> m_pending;
    std::string m_note;
};

// The names of the claim files in the lock directory, kept between the looks of one waiter.
// Listing the directory costs about half a microsecond per file in it, and a long queue puts
// a ticket there for every waiter, so a waiter with a release watch lists it once and again
// only when the watch saw a claim file appear: until then the names it has are what a listing
// would find (inotify reports every file created, linked or renamed in; an overflow counts as
// one). Only the names are kept: every look still reads each claim's state. Without a watch,
// or with a degraded one, every look lists. docs/design/queue.md, "The head's look".
class ClaimListing {
  public:
    ClaimListing() = default;
    // `watch` must outlive the listing.
    explicit ClaimListing(ReleaseWatch& watch) : m_watch(&watch) {}

    // The names of the files that may be claims ("gpu-*.lock"), as of now.
    [[nodiscard]] Result<const std::vector<std::string>*> names(const LockDir& dir);
    // The next look lists the directory again.
    void forget() noexcept { m_names.reset(); }
    // How many times the directory was listed (for tests).
    [[nodiscard]] unsigned listings() const noexcept { return m_listings; }

  private:
    ReleaseWatch* m_watch = nullptr;
    std::optional<std::vector<std::string>> m_names;
    unsigned m_listings = 0;
};

// Which of `uuids` are claimed now and the recorded holder of each (holder fields are empty
// when the record is missing, unreadable or out of range). Call with a DecisionLock held.
// Never creates a file; never blocks. A file in the lock directory named like a claim file
// but not one with-gpu could have made (a symlink, a FIFO, a directory, the wrong owner)
// is ignored; one whose lock state cannot be read (e.g. mode 000) makes its GPU count as
// claimed by an unknown holder, as does anything wrong with the caller's own claim file.
// Each such file adds a line to `notes` (when given) that names it.
[[nodiscard]] Result<gpu::ClaimMap> read_claims(const LockDir& dir,
                                                const std::vector<std::string>& uuids,
                                                std::vector<std::string>* notes = nullptr);
// The same, with the claim files' names from `listing`.
[[nodiscard]] Result<gpu::ClaimMap> read_claims(const LockDir& dir,
                                                const std::vector<std::string>& uuids,
                                                ClaimListing& listing,
                                                std::vector<std::string>* notes = nullptr);

// A set of claimed GPUs, taken all or nothing. Move-only. Destroying it closes this process's
// descriptors; the claim lasts until every process holding the descriptors (the job inherits
// them) has exited.
class Claim {
  public:
    // Claims every GPU in `uuids`: locks the caller's own claim file of each with
    // flock(LOCK_EX|LOCK_NB), in sorted UUID order, then checks that no other user's claim
    // file of those GPUs is locked. If one is claimed, releases those taken so far and
    // returns nullopt. Errors: the caller's own claim file is unusable (planted symlink,
    // not a regular file, someone else's), I/O errors, a UUID unusable as a file name.
    [[nodiscard]] static Result<std::optional<Claim>> try_acquire(const LockDir& dir,
                                                                  std::vector<std::string> uuids);

    [[nodiscard]] const std::vector<std::string>& uuids() const noexcept { return m_uuids; }

    // The locked descriptors, for the job to inherit (they are O_CLOEXEC until then).
    [[nodiscard]] std::vector<int> descriptors() const;

    // Records who holds the claim in each lock file (diagnostic, for --status).
    [[nodiscard]] Result<void> record_holder(const gpu::ClaimHolder& holder);
    // The same for the claim file of one GPU only (a hold differs from GPU to GPU).
    [[nodiscard]] Result<void> record_holder(const std::string& uuid,
                                             const gpu::ClaimHolder& holder);

  private:
    Claim(std::vector<std::string> uuids, std::vector<Fd> fds)
        : m_uuids(std::move(uuids)), m_fds(std::move(fds)) {}
    std::vector<std::string> m_uuids; // sorted
    std::vector<Fd> m_fds;            // parallel to m_uuids
};

// The holder recorded in a lock file's text (one line of JSON). Anyone may write that text:
// what is missing, malformed or out of range leaves its field empty; it never fails or throws.
[[nodiscard]] gpu::ClaimHolder parse_claim_record(std::string_view text);

// The record Claim::record_holder writes: one line of JSON, shorter than what the reader reads.
[[nodiscard]] std::string format_claim_record(const gpu::ClaimHolder& holder);

// "gpu-<UUID>.<uid>.lock": the claim file of user `uid` for a GPU, in the lock directory.
[[nodiscard]] std::string lock_file_name(const std::string& uuid, unsigned uid);

} // namespace withgpu::lock
