#include "os/process_handle.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace withgpu {

ProcessHandle ProcessHandle::open(pid_t pid) noexcept {
    // glibc 2.36 declares pidfd_open only in <sys/pidfd.h>, which older ones lack.
    return ProcessHandle(Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U))));
}

bool ProcessHandle::ends_within(std::chrono::milliseconds limit) const noexcept {
    if (!valid()) {
        return false;
    }
    using Clock = std::chrono::steady_clock;
    const auto until = Clock::now() + limit;
    pollfd ended{m_fd.get(), POLLIN, 0};
    for (;;) {
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
        const int ready =
            ::poll(&ended, 1, static_cast<int>(std::clamp<long long>(left, 0, INT_MAX)));
        if (ready > 0) {
            return true;
        }
        if (ready == 0 || errno != EINTR) {
            return false;
        }
    }
}

} // namespace withgpu
