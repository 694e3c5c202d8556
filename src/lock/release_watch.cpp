#include "lock/release_watch.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <sys/inotify.h>
#include <unistd.h>

namespace withgpu::lock {

namespace {

// Claims and tickets: the only files whose events can matter to a waiter.
bool claim_or_ticket(std::string_view name) {
    return name.starts_with(claim_file_prefix) || name.starts_with(ticket_file_prefix);
}

} // namespace

ReleaseWatch ReleaseWatch::open(const LockDir& dir) {
    Fd fd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!fd) {
        return ReleaseWatch(Fd{});
    }
    // Watch the directory we opened and checked, not whatever the path names now.
    constexpr std::uint32_t events = IN_CLOSE_WRITE | IN_DELETE | IN_CREATE | IN_MOVED_TO;
    const std::string path = fmt::format("/proc/self/fd/{}", dir.fd());
    if (::inotify_add_watch(fd.get(), path.c_str(), events) < 0 &&
        ::inotify_add_watch(fd.get(), dir.path().c_str(), events) < 0) {
        return ReleaseWatch(Fd{});
    }
    return ReleaseWatch(std::move(fd));
}

bool ReleaseWatch::take_events() {
    if (!m_fd) {
        return true; // degraded: every look might be news
    }
    alignas(inotify_event) char buffer[4096];
    bool relevant = false;
    ssize_t n = 0;
    while ((n = ::read(m_fd.get(), buffer, sizeof buffer)) > 0) {
        for (ssize_t offset = 0; offset < n;) {
            const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
            const std::string_view name = event->len > 0 ? event->name : "";
            const bool lost = (event->mask & IN_Q_OVERFLOW) != 0;
            // A file that appears frees nothing (a ticket joining behind us, a new claim), but
            // a listing made before it is out of date.
            const bool appeared = (event->mask & (IN_CREATE | IN_MOVED_TO)) != 0;
            relevant = relevant || lost || (!appeared && claim_or_ticket(name));
            m_names_added =
                m_names_added || lost || (appeared && name.starts_with(claim_file_prefix));
            offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
        }
    }
    return relevant;
}

bool ReleaseWatch::take_names_added() {
    static_cast<void>(take_events()); // the caller is about to look: what ended, it will see
    if (!m_fd) {
        return true;
    }
    const bool added = m_names_added;
    m_names_added = false;
    return added;
}

} // namespace withgpu::lock
