#include "core/decision_lock.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace withgpu::core {

Error cancelled_error() {
    return Error{ErrorKind::cancelled, "the wait was cancelled", {}};
}

Result<lock::DecisionLock>
take_decision_lock(const lock::LockDir& dir,
                   lock::DecisionLock::Mode mode,
                   bool create,
                   std::optional<std::chrono::steady_clock::time_point> deadline,
                   const Hooks& hooks) {
    auto held = lock::DecisionLock::start(dir, mode, create);
    if (!held) {
        return held;
    }
    const auto patience_ends = hooks.clock.now() + decision_lock_patience;
    const auto until = deadline ? std::min(*deadline, patience_ends) : patience_ends;
    while (held->pending()) {
        const int fds[] = {held->ready_fd()};
        switch (wait_for(fds, until, hooks.cancel, hooks.clock)) {
        case Woken::cancelled:
            return tl::unexpected(cancelled_error());
        case Woken::timeout:
            if (deadline && hooks.clock.now() >= *deadline) {
                return tl::unexpected(Error{ErrorKind::timeout, {}, {}});
            }
            held->give_up(fmt::format(
                "deciding without the decision lock: {}/decide.lock has been held for {}s by "
                "another process (stopped?)",
                dir.path(),
                decision_lock_patience.count()));
            return held;
        case Woken::ready:
            if (auto finished = held->finish(); !finished) {
                return tl::unexpected(finished.error());
            }
            break;
        }
    }
    return held;
}

} // namespace withgpu::core
