// The library's calls: the caller's settings merged with the configuration files and the
// environment exactly as the command merges its flags, then the one acquisition path
// (src/core) with callbacks for progress and the caller's cancellation.
#include "config/launch.hpp"
#include "config/resolve.hpp"
#include "core/acquire.hpp"
#include "core/machine.hpp"
#include "core/placement.hpp"
#include "core/status.hpp"
#include "library/context.hpp"
#include "library/lease.hpp"
#include "lock/lock_dir.hpp"
#include "nvml/nvml.hpp"
#include "os/clock.hpp"
#include "procfs/process_info.hpp"
#include "report/decision_report.hpp"
#include "report/waiting_report.hpp"

#include <fstream>
#include <iterator>
#include <optional>
#include <unistd.h>

namespace with_gpu::detail {

namespace core = withgpu::core;
namespace config = withgpu::config;

namespace {

template <typename T> T value_or_raise(withgpu::Result<T> result) {
    if (!result) {
        raise(result.error());
    }
    return std::move(*result);
}

void ok_or_raise(const withgpu::Result<void>& result) {
    if (!result) {
        raise(result.error());
    }
}

// The request's settings over the files and the environment, checked and typed.
config::Launch launch_of(const Request& request, const Context& context) {
    const config::Files files =
        value_or_raise(core::read_config_files(context.env, context.installation));
    config::Sources sources;
    sources.system_file = files.system;
    sources.user_file = files.user;
    sources.environment = context.env.as_map();
    for (const auto& [name, text] : request.settings()) {
        sources.arguments[name] = text;
    }
    sources.profile = request.profile();
    return config::launch_from(value_or_raise(config::resolve(sources)));
}

// What a library caller's messages call the GPU filters.
constexpr core::OptionNames keyword_names{"gpus", "exclude"};

struct Looked {
    config::Launch launch;
    core::Placement placement;
    withgpu::nvml::Nvml nvml;
    withgpu::gpu::MachineSnapshot machine;
};

// What a look reads of each GPU: what the request chooses by, or every figure (to show them).
enum class Reading { to_choose, to_show };

Looked look(const Request& request, const Context& context, Reading reading) {
    config::Launch launch = launch_of(request, context);
    core::Placement placement = value_or_raise(core::place(launch, context.env));
    auto opened = value_or_raise(core::open_machine(
        launch.nvml_library,
        reading == Reading::to_show ? withgpu::gpu::Figures::all() : core::figures_for(placement)));
    ok_or_raise(core::settle(placement, opened.snapshot, keyword_names));
    return {std::move(launch),
            std::move(placement),
            std::move(opened.nvml),
            std::move(opened.snapshot)};
}

// The waiting line and notes, handed to the caller's callbacks.
class CallbackProgress final : public core::Progress {
  public:
    explicit CallbackProgress(const WaitOptions& options) : m_options(options) {}

    void waiting(const withgpu::report::WaitingState& state, std::chrono::seconds waited) override {
        if (!m_options.on_progress || (m_last && withgpu::report::same_but_ages(*m_last, state))) {
            return; // a claim growing older is not news
        }
        m_last = state;
        m_options.on_progress(withgpu::report::waiting_line(state, waited));
    }
    void note(const std::string& text) override {
        if (m_options.on_note) {
            m_options.on_note(text);
        }
    }

  private:
    const WaitOptions& m_options;
    std::optional<withgpu::report::WaitingState> m_last;
};

// "python3 train.py --lr 3e-4": this process's command line, for tickets and claim records.
std::string own_command_line() {
    std::ifstream in("/proc/self/cmdline", std::ios::binary);
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    while (!text.empty() && text.back() == '\0') {
        text.pop_back();
    }
    for (char& c : text) {
        c = c == '\0' ? ' ' : c;
    }
    return text;
}

} // namespace

Lease acquire(const Request& request, const WaitOptions& wait, const Context& context) {
    Looked looked = look(request, context, Reading::to_choose);
    const auto dir = value_or_raise(withgpu::lock::LockDir::open(looked.placement.lock_dir, true));
    CallbackProgress progress(wait);
    const core::Hooks hooks{
        progress, core::Cancellation{wait.cancel_fd, wait.cancel_requested, wait.check_every}};
    const core::Identity who{static_cast<int>(::getpid()), ::getuid(), own_command_line()};
    const core::Waiting waiting{looked.launch.wait,
                                looked.launch.timeout,
                                looked.launch.poll,
                                core::Waiting::Caller::library};
    core::Acquired got = value_or_raise(core::acquire(looked.placement.request,
                                                      waiting,
                                                      who,
                                                      looked.nvml,
                                                      std::move(looked.machine),
                                                      dir,
                                                      hooks));
    withgpu::gpu::ClaimHolder holder;
    holder.pid = who.pid;
    holder.supervisor_pid = who.pid;
    holder.user = withgpu::procfs::user_name(who.uid);
    holder.command = who.command;
    holder.since_unix = withgpu::now_unix();
    (void)got.claim.record_holder(holder); // diagnostic (for --status); never fails a claim

    auto state = std::make_unique<Lease::State>();
    for (unsigned index : got.decision.chosen) {
        const withgpu::gpu::GpuSnapshot* g = got.machine.find(index);
        state->gpus.push_back({g->index, g->uuid, core::own_cuda_id(looked.placement, *g)});
    }
    state->claim.emplace(std::move(got.claim));
    return make_lease(std::move(state));
}

std::string would_choose_json(const Request& request, const Context& context) {
    Looked looked = look(request, context, Reading::to_show);
    core::Silent silent;
    const core::Cancellation never;
    const core::Hooks hooks{silent, never};
    const auto decision = value_or_raise(core::decide_now(
        looked.placement.lock_dir, looked.machine, looked.placement.request, hooks));
    return withgpu::report::decision_json(looked.machine, decision).dump(2);
}

std::string status_json(const Request& request, const Context& context) {
    const config::Launch launch = launch_of(request, context);
    const auto allocation = value_or_raise(core::slurm_allocation(context.env));
    auto machine = value_or_raise(core::open_machine(launch.nvml_library)).snapshot;
    core::Silent silent;
    const core::Cancellation never;
    const core::Hooks hooks{silent, never};
    auto view = value_or_raise(core::current_view(launch.lock_dir, machine, hooks));
    core::join_claims(machine, view.claims);
    return core::status_document(machine, view, allocation).dump(2);
}

} // namespace with_gpu::detail

namespace with_gpu {

Lease acquire(const Request& request, const WaitOptions& wait) {
    return detail::acquire(request, wait, detail::Context{});
}

std::string would_choose_json(const Request& request) {
    return detail::would_choose_json(request, detail::Context{});
}

std::string status_json(const Request& request) {
    return detail::status_json(request, detail::Context{});
}

} // namespace with_gpu
