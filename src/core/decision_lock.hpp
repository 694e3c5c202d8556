// Taking the decision lock, bounded and cancellable. It is held for milliseconds, but its
// holder may be stopped (Ctrl-Z on a --status, a debugger): after `patience` with-gpu decides
// without it, as it does when decide.lock is unusable. Claims stay exclusive without it; only
// the order of decisions is lost for as long.
#pragma once

#include "core/hooks.hpp"
#include "lock/claim.hpp"

#include <chrono>
#include <optional>

namespace withgpu::core {

inline constexpr std::chrono::seconds decision_lock_patience{10};

// ErrorKind::timeout when `deadline` passes first (its message is left to the caller), and
// the cancelled error (cancelled_error()) when the caller cancels.
[[nodiscard]] Result<lock::DecisionLock>
take_decision_lock(const lock::LockDir& dir,
                   lock::DecisionLock::Mode mode,
                   bool create,
                   std::optional<std::chrono::steady_clock::time_point> deadline,
                   const Hooks& hooks);

// The error a cancelled wait ends with.
[[nodiscard]] Error cancelled_error();

} // namespace withgpu::core
