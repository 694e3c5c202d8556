#include "app/job_guard.hpp"

#include "cuda/driver.hpp"
#include "cuda/hold.hpp"
#include "nvml/nvml.hpp"
#include "os/clock.hpp"
#include "os/fd.hpp"
#include "procfs/process_info.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

#include <array>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <map>
#include <optional>
#include <poll.h>
#include <pthread.h>
#include <set>
#include <sys/prctl.h>
#include <thread>
#include <unistd.h>
#include <utility>

namespace withgpu::app {

namespace {

struct HeldGpu {
    GuardedGpu gpu;
    std::optional<cuda::Hold> hold;
};

cuda::Amount amount_of(const config::HoldAmount& amount) {
    if (amount.bytes > 0) {
        return cuda::Bytes{amount.bytes};
    }
    return cuda::Fraction{amount.fraction};
}

} // namespace

struct JobGuard::State {
    GuardSettings settings;
    pid_t job = 0;
    std::vector<GuardedGpu> claimed;
    std::vector<GuardedGpu> others;
    lock::Claim& claim;
    gpu::ClaimHolder holder;
    Fd stop_read;
    Fd stop_write;
    std::thread thread;
    std::map<unsigned, bool> family; // pid -> the job's own (cached: parents do not change
                                     // but to the subreaper, which keeps a process ours)

    State(GuardSettings s,
          pid_t j,
          std::vector<GuardedGpu> c,
          std::vector<GuardedGpu> o,
          lock::Claim& cl,
          gpu::ClaimHolder h)
        : settings(std::move(s)), job(j), claimed(std::move(c)), others(std::move(o)), claim(cl),
          holder(std::move(h)) {}

    void say(const std::string& text) const {
        if (!settings.quiet) {
            fmt::print(stderr, "with-gpu: {}\n", text);
        }
    }

    // The command or one of its descendants (never with-gpu itself, whose hold shows in NVML).
    bool is_the_jobs(unsigned pid) {
        const auto self = static_cast<unsigned>(::getpid());
        if (pid == self) {
            return false;
        }
        const auto known = family.find(pid);
        if (known != family.end()) {
            return known->second;
        }
        const bool ours = procfs::descends_from(static_cast<pid_t>(pid), ::getpid());
        family.emplace(pid, ours);
        return ours;
    }

    // The first of the job's processes on `uuid` in `machine`, if any.
    std::optional<unsigned> jobs_process_on(const gpu::MachineSnapshot& machine,
                                            const std::string& uuid) {
        for (const auto& g : machine.gpus) {
            if (g.uuid != uuid || !g.processes) {
                continue;
            }
            for (const auto& p : *g.processes) {
                if (is_the_jobs(p.pid)) {
                    return p.pid;
                }
            }
        }
        return std::nullopt;
    }

    void record_hold(const HeldGpu& held) {
        gpu::ClaimHolder record = holder;
        if (held.hold && held.hold->active()) {
            record.hold_bytes = held.hold->held_bytes();
            record.hold_since_unix = now_unix();
        }
        (void)claim.record_holder(held.gpu.uuid, record); // diagnostic: never fails the job
    }

    std::vector<HeldGpu> make_holds(const nvml::Nvml& nvml) {
        std::vector<HeldGpu> holds;
        for (const auto& g : claimed) {
            holds.push_back({g, std::nullopt});
        }
        if (!settings.hold.on()) {
            return holds;
        }
        auto driver = cuda::Driver::open(settings.cuda_library);
        if (!driver) {
            say(fmt::format("warning: --hold: {}; the job runs without a hold",
                            driver.error().message));
            return holds;
        }
        const auto machine = nvml.snapshot(gpu::Figures::none()); // processes are enough
        for (auto& held : holds) {
            if (machine && jobs_process_on(*machine, held.gpu.uuid)) {
                continue; // the job was quicker: nothing to hold for it
            }
            auto hold = cuda::Hold::make(*driver, held.gpu.pci_bus_id, amount_of(settings.hold));
            if (!hold) {
                say(fmt::format("warning: --hold: GPU {}: {}; it runs without a hold",
                                held.gpu.index,
                                hold.error().message));
                continue;
            }
            held.hold.emplace(std::move(*hold));
            record_hold(held);
        }
        return holds;
    }

    void release(HeldGpu& held) {
        if (held.hold && held.hold->active()) {
            held.hold->release();
            record_hold(held);
        }
    }

    void check_placement(const gpu::MachineSnapshot& machine, std::set<std::string>& warned) {
        for (const auto& g : others) {
            if (warned.count(g.uuid) != 0) {
                continue;
            }
            const auto pid = jobs_process_on(machine, g.uuid);
            if (!pid) {
                continue;
            }
            warned.insert(g.uuid);
            const auto details = procfs::read_process_details(static_cast<pid_t>(*pid));
            say(fmt::format("warning: the job's process {} ({}) uses GPU {} ({}), which it did "
                            "not claim; check that it respects CUDA_VISIBLE_DEVICES",
                            *pid,
                            details.command.value_or("?"),
                            g.index,
                            g.uuid));
            holder.misplaced.push_back(fmt::format("GPU {}", g.index));
            (void)claim.record_holder(holder);
            if (settings.kill_misplaced) {
                say(fmt::format("--on-misplaced=kill: stopping the job (SIGTERM to pid {})", job));
                ::kill(job, SIGTERM);
            }
        }
    }

    // Sleeps `interval` unless stopped; false when stopped.
    [[nodiscard]] bool sleep(std::chrono::milliseconds interval) const {
        pollfd entry{stop_read.get(), POLLIN, 0};
        int n = 0;
        do {
            n = ::poll(&entry, 1, static_cast<int>(interval.count()));
        } while (n < 0 && errno == EINTR);
        return n == 0;
    }

    // Started when the first work is due (first_work_after): the holds, or the first
    // placement check.
    void run() {
        auto nvml = nvml::Nvml::open(settings.nvml_library);
        if (!nvml) {
            say(fmt::format("warning: cannot watch the job's GPUs: {}", nvml.error().message));
            return;
        }
        std::vector<HeldGpu> holds = make_holds(*nvml);
        const auto until = std::chrono::steady_clock::now() + settings.hold_timeout;
        std::set<std::string> warned;
        bool slept = !settings.hold.on(); // the first placement check is due already
        for (;;) {
            const bool holding = std::any_of(holds.begin(), holds.end(), [](const HeldGpu& h) {
                return h.hold && h.hold->active();
            });
            if (!std::exchange(slept, false) &&
                !sleep(holding ? settings.hold_poll : settings.placement_poll)) {
                break;
            }
            const auto machine = nvml->snapshot(gpu::Figures::none()); // processes are enough
            if (!machine) {
                continue; // a driver hiccup: look again next time
            }
            for (auto& held : holds) {
                if (held.hold && held.hold->active() && jobs_process_on(*machine, held.gpu.uuid)) {
                    release(held); // the job uses it now
                }
            }
            if (holding && std::chrono::steady_clock::now() >= until) {
                for (auto& held : holds) {
                    if (held.hold && held.hold->active()) {
                        say(fmt::format("--hold: GPU {} released after --hold-timeout: the job "
                                        "has not used it",
                                        held.gpu.index));
                        release(held);
                    }
                }
            }
            check_placement(*machine, warned);
        }
        for (auto& held : holds) {
            release(held);
        }
    }
};

std::chrono::milliseconds JobGuard::first_work_after(const GuardSettings& settings) {
    return settings.hold.on() ? std::chrono::milliseconds(0) : settings.placement_poll;
}

void JobGuard::adopt_orphans() {
    (void)::prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL); // best effort (old kernels)
}

JobGuard::JobGuard(GuardSettings settings,
                   pid_t job,
                   std::vector<GuardedGpu> claimed,
                   std::vector<GuardedGpu> others,
                   lock::Claim& claim,
                   gpu::ClaimHolder holder)
    : m_state(std::make_unique<State>(std::move(settings),
                                      job,
                                      std::move(claimed),
                                      std::move(others),
                                      claim,
                                      std::move(holder))) {
    std::array<int, 2> fds{};
    if (::pipe2(fds.data(), O_CLOEXEC) != 0) {
        m_state->say("warning: cannot watch the job's GPUs (pipe2 failed)");
        return;
    }
    m_state->stop_read = Fd(fds[0]);
    m_state->stop_write = Fd(fds[1]);
    if (m_state->settings.hold.on()) {
        // CUDA enumerates only the GPUs CUDA_VISIBLE_DEVICES names, and holds find GPUs by bus
        // id among all of them. The job's environment was built already.
        ::unsetenv("CUDA_VISIBLE_DEVICES");
    }
    // Signals stay with the main thread, which forwards them to the job.
    sigset_t all;
    sigset_t previous;
    sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &previous);
    m_state->thread = std::thread([state = m_state.get()] { state->run(); });
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

JobGuard::~JobGuard() {
    if (m_state->thread.joinable()) {
        const char byte = 1;
        (void)!::write(m_state->stop_write.get(), &byte, 1);
        m_state->thread.join();
    }
}

} // namespace withgpu::app
