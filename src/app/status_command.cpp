// --status: every GPU with its figures, processes and claim holder; --watch redraws it.
#include "app/commands.hpp"
#include "app/common.hpp"
#include "app/exit_code.hpp"
#include "app/terminal_progress.hpp"
#include "core/machine.hpp"
#include "core/placement.hpp"
#include "core/status.hpp"
#include "lock/claim.hpp"
#include "nvml/nvml.hpp"
#include "os/clock.hpp"
#include "report/status_json.hpp"
#include "report/status_table.hpp"
#include "slurm/allocation.hpp"
#include "term/printer.hpp"
#include "term/rules.hpp"

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <poll.h>

namespace withgpu::app {

namespace {

// What the watch handlers tell the loop: global, because a signal handler can reach nothing
// else (ARCHITECTURE.md lists every global). Bits are set by the handlers (which block every
// other signal while they run) and read and cleared by the loop only while the signals are
// blocked.
constexpr sig_atomic_t watch_stop = 1;
constexpr sig_atomic_t watch_resize = 2;
volatile sig_atomic_t g_watch_events = 0; // NOLINT: written by signal handlers

void on_watch_signal(int sig) {
    g_watch_events = g_watch_events | (sig == SIGWINCH ? watch_resize : watch_stop);
}

// Ctrl-C, kill, a closed terminal and a resized one, caught for the time of the watch so that
// the loop can restore the terminal and exit 0. Restores the previous handlers on the way out.
class WatchSignals {
  public:
    WatchSignals() {
        g_watch_events = 0;
        sigemptyset(&m_set);
        struct sigaction action {};
        sigfillset(&action.sa_mask);
        action.sa_flags = SA_RESTART; // output is never cut short; ppoll still returns EINTR
        action.sa_handler = on_watch_signal;
        for (std::size_t i = 0; i < signals.size(); ++i) {
            sigaddset(&m_set, signals[i]);
            ::sigaction(signals[i], nullptr, &m_previous[i]);
            // A signal the user's shell ignores (nohup, background jobs) stays ignored.
            if (m_previous[i].sa_handler != SIG_IGN) {
                ::sigaction(signals[i], &action, nullptr);
            }
        }
    }
    WatchSignals(const WatchSignals&) = delete;
    WatchSignals& operator=(const WatchSignals&) = delete;
    ~WatchSignals() {
        for (std::size_t i = 0; i < signals.size(); ++i) {
            ::sigaction(signals[i], &m_previous[i], nullptr);
        }
    }

    // Sleeps for `interval` unless a signal comes first; returns the events seen (and clears
    // them). Race-free: the signals stay blocked from the check until ppoll atomically
    // unblocks them, so one arriving in between interrupts ppoll instead of being missed.
    [[nodiscard]] sig_atomic_t sleep(std::chrono::milliseconds interval) const {
        sigset_t previous;
        ::sigprocmask(SIG_BLOCK, &m_set, &previous);
        if (g_watch_events == 0) {
            timespec timeout{};
            timeout.tv_sec = static_cast<time_t>(interval.count() / 1000);
            timeout.tv_nsec = static_cast<long>((interval.count() % 1000) * 1000000);
            (void)::ppoll(nullptr, 0, &timeout, &previous); // EINTR is the point
        }
        const sig_atomic_t events = g_watch_events;
        g_watch_events = 0;
        ::sigprocmask(SIG_SETMASK, &previous, nullptr);
        return events;
    }

  private:
    static constexpr std::array<int, 4> signals{SIGINT, SIGTERM, SIGHUP, SIGWINCH};
    sigset_t m_set{};
    std::array<struct sigaction, signals.size()> m_previous{};
};

// Colour only for a person looking at a terminal that can show it (https://no-color.org).
term::Printer stdout_printer(const core::ProcessEnvironment& env) {
    return {stdout, term::color_allowed(env.get("NO_COLOR"), env.get("TERM"))};
}

std::string format_interval(std::chrono::milliseconds interval) {
    return interval.count() % 1000 == 0 ? fmt::format("{}s", interval.count() / 1000)
                                        : fmt::format("{}ms", interval.count());
}

// "with-gpu --status · every 2s · 10:03:07 · Ctrl-C to quit", in local time.
std::string
watch_header(std::chrono::milliseconds interval, std::int64_t now, const report::Style& style) {
    const auto t = static_cast<std::time_t>(now);
    std::tm tm{};
    localtime_r(&t, &tm);
    return report::paint(
               fmt::format("with-gpu --status · every {} · {:02}:{:02}:{:02} · Ctrl-C to quit",
                           format_interval(interval),
                           tm.tm_hour,
                           tm.tm_min,
                           tm.tm_sec),
               report::Tone::dim,
               style) +
           "\n";
}

// Notes about odd files in the lock directory, on stderr (the board and the JSON stay as they
// are), each once however often a watch looks again; nothing with -q.
struct StatusNotes {
    explicit StatusNotes(bool quiet) : progress(quiet) {}
    TerminalProgress progress;
    core::Notes seen;
};

// One look at the machine and the lock directory, drawn.
// Inside a SLURM allocation the board ends with which GPUs it holds (JSON: "slurm").
Result<std::string> render(const nvml::Nvml& nvml,
                           const cli::Options& options,
                           const report::Style& style,
                           const std::optional<slurm::Allocation>& allocation,
                           StatusNotes& notes) {
    auto machine = core::read_machine(nvml);
    if (!machine) {
        return tl::unexpected(machine.error());
    }
    const core::Cancellation never; // named: GCC 12 -O3 warns about the temporary's
    const core::Hooks hooks{notes.progress, never};
    auto view = core::current_view(options.launch.lock_dir, *machine, hooks);
    if (!view) {
        return tl::unexpected(view.error());
    }
    notes.seen.pass_on(view->notes, notes.progress);
    core::join_claims(*machine, view->claims);
    if (options.json) {
        return core::status_document(*machine, *view, allocation).dump(2) + "\n";
    }
    return report::status_table(*machine, view->claims, view->queue, now_unix(), style) +
           (allocation ? slurm::allocation_text(*allocation, *machine) : std::string());
}

Result<int> watch(const nvml::Nvml& nvml,
                  const cli::Options& options,
                  term::Printer& printer,
                  std::chrono::milliseconds interval,
                  const std::optional<slurm::Allocation>& allocation) {
    // The first look fails the way a plain --status would; later ones show the error in the
    // frame and keep watching (a driver hiccup should not end the watch).
    report::Style style = printer.style();
    StatusNotes notes(options.quiet);
    auto first = render(nvml, options, style, allocation, notes);
    if (!first) {
        return tl::unexpected(first.error());
    }
    const WatchSignals signals;
    const term::HiddenCursor cursor(printer);
    std::string board = std::move(*first);
    for (;;) {
        printer.redraw_screen(watch_header(interval, now_unix(), style) + board);
        if ((signals.sleep(interval) & watch_stop) != 0) {
            return exit_ok;
        }
        style = printer.style(); // the terminal may have been resized
        auto next = render(nvml, options, style, allocation, notes);
        board = next ? std::move(*next)
                     : report::paint(fmt::format("with-gpu: {}\n", next.error().message),
                                     report::Tone::red,
                                     style);
    }
}

} // namespace

Result<int> status_command(const cli::Options& options, const core::ProcessEnvironment& env) {
    // Opened once: a watch re-reads the GPUs through the same session.
    auto nvml = nvml::Nvml::open(options.launch.nvml_library);
    if (!nvml) {
        return tl::unexpected(nvml.error());
    }
    auto allocation = core::slurm_allocation(env);
    if (!allocation) {
        return tl::unexpected(allocation.error());
    }
    term::Printer printer = stdout_printer(env);
    if (options.watch && !options.json) {
        return watch(*nvml, options, printer, *options.watch, *allocation);
    }
    StatusNotes notes(options.quiet);
    auto board = render(*nvml, options, printer.style(), *allocation, notes);
    if (!board) {
        return tl::unexpected(board.error());
    }
    printer.print(*board);
    return exit_ok;
}

} // namespace withgpu::app
