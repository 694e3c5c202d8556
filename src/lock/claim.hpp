// Claims on GPUs: one lock file per physical GPU, keyed by UUID, taken with
// flock(2). See docs/design/locking.md for the protocol and why it cannot leave
// a stale claim behind.
#pragma once

#include "gpu/claim.hpp"
#include "lock/lock_dir.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace withgpu::lock {

// Serialises decisions: a with-gpu process holds it exclusively while it looks at the
// claims, selects and claims; `--status` holds it shared while it reads the claims, so it
// never sees (or disturbs) a half-made decision. Held for milliseconds. Blocking.
class DecisionLock {
  public:
    enum class Mode { exclusive, shared };
    [[nodiscard]] static Result<DecisionLock> acquire(const LockDir& dir, Mode mode);
    // Releases early (idempotent); the destructor releases too.
    void release() noexcept { m_fd.reset(); }

  private:
    explicit DecisionLock(Fd fd) : m_fd(std::move(fd)) {}
    Fd m_fd;
};

// Which of `uuids` are claimed now and the recorded holder of each (holder fields are empty
// when the record is missing or unreadable). Call with a DecisionLock held. Never creates a
// lock file; never blocks.
[[nodiscard]] Result<gpu::ClaimMap> read_claims(const LockDir& dir,
                                                const std::vector<std::string>& uuids);

// A set of claimed GPUs, taken all or nothing. Move-only. Destroying it closes this process's
// descriptors; the claim lasts until every process holding the descriptors (the job inherits
// them) has exited.
class Claim {
  public:
    // Claims every GPU in `uuids` with flock(LOCK_EX|LOCK_NB), in sorted UUID order. If one is
    // already claimed, releases those taken so far and returns nullopt. Errors: unsafe lock
    // file (symlink, not a regular file), I/O errors, a UUID unusable as a file name.
    [[nodiscard]] static Result<std::optional<Claim>> try_acquire(const LockDir& dir,
                                                                  std::vector<std::string> uuids);

    [[nodiscard]] const std::vector<std::string>& uuids() const noexcept { return m_uuids; }

    // The locked descriptors, for the job to inherit (they are O_CLOEXEC until then).
    [[nodiscard]] std::vector<int> descriptors() const;

    // Records who holds the claim in each lock file (diagnostic, for --status). Best effort
    // per file: a lock file we may not write (another user created it read-only) is skipped.
    [[nodiscard]] Result<void> record_holder(const gpu::ClaimHolder& holder);

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

// "gpu-<UUID>.lock": the lock file's name inside the lock directory.
[[nodiscard]] std::string lock_file_name(const std::string& uuid);

} // namespace withgpu::lock
