// with-gpu and SLURM (docs/slurm.md): the allocation a job runs in, --slurm-gres-conf, and
// the prolog's claim holder that --slurm-epilog ends.
#include "app/commands.hpp"
#include "app/common.hpp"
#include "app/exit_code.hpp"
#include "core/decision_lock.hpp"
#include "core/machine.hpp"
#include "core/placement.hpp"
#include "lock/claim.hpp"
#include "nvml/nvml.hpp"
#include "os/clock.hpp"
#include "os/errno_text.hpp"
#include "os/fd.hpp"
#include "os/process_handle.hpp"
#include "procfs/process_info.hpp"
#include "slurm/allocation.hpp"
#include "slurm/gres_conf.hpp"

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ; // NOLINT: POSIX

namespace withgpu::app {

namespace {

std::string short_host_name() {
    std::array<char, 256> name{};
    if (::gethostname(name.data(), name.size() - 1) != 0) {
        return "localhost";
    }
    std::string host(name.data());
    return host.substr(0, host.find('.'));
}

std::optional<unsigned> read_number(const std::filesystem::path& file) {
    std::ifstream in(file);
    unsigned value = 0;
    if (in >> value) {
        return value;
    }
    return std::nullopt;
}

// Logical CPU -> SLURM's core index: cores numbered socket by socket, the hardware threads of
// one core sharing its index (what slurmd means by gres.conf Cores=). Empty when sysfs does
// not say, and then CPU numbers are used as they are.
std::map<unsigned, unsigned> core_of_cpu() {
    std::map<unsigned, std::pair<unsigned, unsigned>> place; // cpu -> (package, core)
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/sys/devices/system/cpu", ec)) {
        const std::string name = entry.path().filename().string();
        if (name.size() < 4 || name.compare(0, 3, "cpu") != 0 ||
            name.find_first_not_of("0123456789", 3) != std::string::npos) {
            continue;
        }
        const auto package = read_number(entry.path() / "topology/physical_package_id");
        const auto core = read_number(entry.path() / "topology/core_id");
        if (package && core) {
            place.emplace(static_cast<unsigned>(std::stoul(name.substr(3))),
                          std::make_pair(*package, *core));
        }
    }
    std::set<std::pair<unsigned, unsigned>> cores;
    for (const auto& [cpu, where] : place) {
        cores.insert(where);
    }
    std::map<unsigned, unsigned> result;
    for (const auto& [cpu, where] : place) {
        result[cpu] = static_cast<unsigned>(std::distance(cores.begin(), cores.find(where)));
    }
    return result;
}

// The claim record names the job; `slurm job 1234 (alice)` in --status.
gpu::ClaimHolder holder_record(const std::string& job_id, const std::string& user) {
    gpu::ClaimHolder holder;
    holder.pid = static_cast<int>(::getpid());
    holder.supervisor_pid = holder.pid;
    holder.user = user;
    holder.command = "with-gpu --slurm-prolog (holds the GPUs of SLURM job " + job_id + ")";
    holder.since_unix = now_unix();
    holder.slurm_job = job_id;
    return holder;
}

// The program `name` as the shell would find it on PATH; `name` itself when no PATH directory
// has it (posix_spawn then fails, and SLURM's answer is unknown).
std::string find_on_path(const std::string& name, const core::ProcessEnvironment& env) {
    const std::string path = env.get("PATH").value_or("/usr/bin:/bin");
    for (std::size_t start = 0; start <= path.size();) {
        const auto colon = path.find(':', start);
        std::string candidate = path.substr(start, colon - start);
        if (!candidate.empty()) {
            candidate += '/';
            candidate += name;
            if (::access(candidate.c_str(), X_OK) == 0) {
                return candidate;
            }
        }
        if (colon == std::string::npos) {
            break;
        }
        start = colon + 1;
    }
    return name;
}

// Starts `words` (the program's path first) with its standard output and error on `output`
// and no signal blocked (the holder blocks SIGTERM; scontrol not); nullopt when it did not
// start.
template <std::size_t N>
std::optional<pid_t> spawn_writing_to(std::array<std::string, N>& words, int output) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawnattr_init(&attributes);
    ::posix_spawn_file_actions_adddup2(&actions, output, STDOUT_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, output, STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    ::posix_spawnattr_setsigmask(&attributes, &none);
    ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
    std::array<char*, N + 1> argv{};
    for (std::size_t i = 0; i < N; ++i) {
        argv[i] = words[i].data();
    }
    pid_t pid = 0;
    const int spawned =
        ::posix_spawn(&pid, words[0].c_str(), &actions, &attributes, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attributes);
    if (spawned != 0) {
        return std::nullopt;
    }
    return pid;
}

// Everything `fd` gives until its end, of which the first `limit` bytes or so are kept.
std::string read_until_end(int fd, std::size_t limit) {
    std::string output;
    std::array<char, 4096> buffer{};
    for (;;) {
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        if (output.size() < limit) {
            output.append(buffer.data(), static_cast<std::size_t>(n));
        }
    }
    return output;
}

// Waits for `pid` to end: its exit status, or 128 when a signal ended it.
int wait_exit_status(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// `scontrol show job --oneliner ID`: is the job still there? Output is read up to 64 KiB.
slurm::JobPresence ask_slurm(const std::string& job_id, const core::ProcessEnvironment& env) {
    std::array<int, 2> pipe_fds{};
    if (::pipe2(pipe_fds.data(), O_CLOEXEC) != 0) {
        return slurm::JobPresence::unknown;
    }
    Fd read_end(pipe_fds[0]);
    Fd write_end(pipe_fds[1]);
    std::array<std::string, 5> words{
        find_on_path("scontrol", env), "show", "job", "--oneliner", job_id};
    const auto pid = spawn_writing_to(words, write_end.get());
    write_end.reset();
    if (!pid) {
        return slurm::JobPresence::unknown;
    }
    std::string output = read_until_end(read_end.get(), 65536);
    return slurm::job_presence(wait_exit_status(*pid), output);
}

// The decision lock for the SLURM commands, which run unattended (slurmd's prolog and epilog):
// nothing to show while waiting for it.
Result<lock::DecisionLock> decision_lock(const lock::LockDir& dir, lock::DecisionLock::Mode mode) {
    core::Silent silent;
    const core::Cancellation never; // named: GCC 12 -O3 warns about the temporary's
    const core::Hooks hooks{silent, never};
    return core::take_decision_lock(dir, mode, true, std::nullopt, hooks);
}

// Claims, one GPU at a time under the decision lock the caller holds, each of `uuids` that no
// one holds (appended to `held`, with `record` written when there is one); returns those
// claimed by someone else.
Result<std::vector<std::string>> claim_each_free(const lock::LockDir& dir,
                                                 const std::vector<std::string>& uuids,
                                                 std::vector<lock::Claim>& held,
                                                 const gpu::ClaimHolder* record) {
    std::vector<std::string> still_missing;
    for (const auto& uuid : uuids) {
        auto claim = lock::Claim::try_acquire(dir, {uuid});
        if (!claim) {
            return tl::unexpected(claim.error());
        }
        if (!*claim) {
            still_missing.push_back(uuid);
            continue;
        }
        if (record != nullptr) {
            (void)(*claim)->record_holder(*record); // diagnostic only
        }
        held.push_back(std::move(**claim));
    }
    return still_missing;
}

// Claims, one GPU at a time, those of `uuids` that are not held yet (held ones move to
// `held`). A GPU claimed by someone else stays in `uuids` for a later try.
Result<void> claim_free(const lock::LockDir& dir,
                        std::vector<std::string>& uuids,
                        std::vector<lock::Claim>& held,
                        const gpu::ClaimHolder& holder) {
    if (uuids.empty()) {
        return {};
    }
    auto decision = decision_lock(dir, lock::DecisionLock::Mode::exclusive);
    if (!decision) {
        return tl::unexpected(decision.error());
    }
    auto still_missing = claim_each_free(dir, uuids, held, &holder);
    if (!still_missing) {
        return tl::unexpected(still_missing.error());
    }
    uuids = std::move(*still_missing);
    return {};
}

// Closes every descriptor but the standard ones and `keep`: slurmd must not wait on a pipe
// the holder inherited, and the holder must keep nothing else of the prolog.
void close_other_descriptors(const std::vector<lock::Claim>& keep, int lock_dir_fd) {
    std::set<int> kept{lock_dir_fd};
    for (const auto& claim : keep) {
        for (const int fd : claim.descriptors()) {
            kept.insert(fd);
        }
    }
    std::vector<int> to_close;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
        const int fd = std::atoi(entry.path().filename().c_str());
        if (fd > STDERR_FILENO && kept.count(fd) == 0) {
            to_close.push_back(fd); // includes the iterator's own descriptor: closed after
        }
    }
    for (const int fd : to_close) {
        ::close(fd);
    }
}

struct JobIdentity {
    std::string job_id;
    std::string user;
};

// What the claim holder keeps: the claims it holds, the job's GPUs it has still to claim,
// whose they are, and how often it looks.
struct Holding {
    std::vector<lock::Claim> held;
    std::vector<std::string> missing;
    JobIdentity job;
    std::chrono::milliseconds interval;
};

// The holder's life: hold the claims until SIGTERM (the epilog) or until SLURM says the job
// is gone; meanwhile claim GPUs of the job that someone else held at the start.
[[noreturn]] void
hold(const lock::LockDir& dir, Holding holding, const core::ProcessEnvironment& env) {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    // Blocked and taken with sigtimedwait: the wait between looks is also the signal wait.
    ::sigprocmask(SIG_BLOCK, &stop, nullptr);
    const auto seconds = holding.interval.count() / 1000;
    const timespec pause{static_cast<time_t>(seconds),
                         static_cast<long>((holding.interval.count() % 1000) * 1000000)};
    for (;;) {
        const int signal = ::sigtimedwait(&stop, nullptr, &pause);
        if (signal > 0) {
            std::_Exit(0); // the claims end with the process
        }
        if (ask_slurm(holding.job.job_id, env) == slurm::JobPresence::gone) {
            std::_Exit(0);
        }
        (void)claim_free(dir,
                         holding.missing,
                         holding.held,
                         holder_record(holding.job.job_id, holding.job.user));
    }
}

Result<JobIdentity> job_identity(const core::ProcessEnvironment& env, std::string_view flag) {
    JobIdentity job;
    job.job_id = env.get("SLURM_JOB_ID").value_or("");
    const bool plain =
        !job.job_id.empty() && job.job_id.find_first_not_of("0123456789_") == std::string::npos;
    if (!plain) {
        return fail(ErrorKind::usage,
                    fmt::format("{}: SLURM_JOB_ID is {}",
                                flag,
                                job.job_id.empty() ? std::string("unset")
                                                   : "\"" + job.job_id + "\", not a job id"),
                    fmt::format("{} is run by slurmd (slurm.conf {}=); see docs/slurm.md",
                                flag,
                                flag == "--slurm-prolog" ? "Prolog" : "Epilog"));
    }
    job.user = env.get("SLURM_JOB_USER").value_or("");
    if (job.user.empty()) {
        const auto uid = env.get("SLURM_JOB_UID");
        job.user =
            uid ? procfs::user_name(static_cast<uid_t>(std::strtoul(uid->c_str(), nullptr, 10)))
                : std::string("?");
    }
    return job;
}

// Is `pid` a with-gpu --slurm-prolog holder (this very program)? Guards the epilog's kill
// against a recycled pid.
bool is_holder(int pid) {
    std::error_code ec;
    const auto ours = std::filesystem::read_symlink("/proc/self/exe", ec);
    const auto theirs = std::filesystem::read_symlink(fmt::format("/proc/{}/exe", pid), ec);
    if (ec || ours != theirs) {
        return false;
    }
    std::ifstream in(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
    std::string word;
    while (std::getline(in, word, '\0')) {
        if (word == "--slurm-prolog") {
            return true;
        }
    }
    return false;
}

// Ends one holder: SIGTERM, then SIGKILL if it has not gone within 10 s.
void end_holder(int pid) {
    const ProcessHandle holder = ProcessHandle::open(pid); // before the signal: pids are reused
    ::kill(pid, SIGTERM);
    if (!holder.ends_within(std::chrono::seconds(10))) {
        ::kill(pid, SIGKILL);
    }
}

// The GPUs slurmd gave the job, as minor numbers, and the variable's text they came from.
struct JobGpus {
    std::string text;
    std::vector<unsigned> minor_numbers;
};

// slurmd gives the prolog SLURM_JOB_GPUS; CUDA_VISIBLE_DEVICES holds the same ids there.
Result<JobGpus> job_gpus(const core::ProcessEnvironment& env) {
    JobGpus gpus;
    gpus.text = env.get("SLURM_JOB_GPUS").value_or(env.get("CUDA_VISIBLE_DEVICES").value_or(""));
    auto ids = slurm::parse_gpu_ids(
        gpus.text, env.get("SLURM_JOB_GPUS") ? "SLURM_JOB_GPUS" : "CUDA_VISIBLE_DEVICES");
    if (!ids) {
        return tl::unexpected(ids.error());
    }
    gpus.minor_numbers = std::move(*ids);
    return gpus;
}

// The UUIDs of the job's GPUs that NVML shows, found by minor number; says on stderr when
// some are not there. NVML is closed on return: the holder forks later, and a forked child
// must not carry driver state.
Result<std::vector<std::string>>
job_uuids(const std::string& nvml_library, const std::string& job_id, const JobGpus& gpus) {
    auto opened = core::open_machine(nvml_library);
    if (!opened) {
        return tl::unexpected(opened.error());
    }
    const auto& machine = opened->snapshot;
    slurm::Allocation allocation;
    allocation.minor_numbers = gpus.minor_numbers;
    std::vector<std::string> uuids;
    for (const unsigned index : slurm::allocated_indices(allocation, machine)) {
        uuids.push_back(machine.find(index)->uuid);
    }
    if (uuids.size() != gpus.minor_numbers.size()) {
        fmt::print(stderr,
                   "with-gpu: --slurm-prolog: job {}: SLURM_JOB_GPUS={} names {} GPU(s), "
                   "NVML shows {} of them by minor number; holding those\n",
                   job_id,
                   gpus.text,
                   gpus.minor_numbers.size(),
                   uuids.size());
    }
    return uuids;
}

// The forked claim holder, from the fork on: its own session (slurmd's signals to the prolog
// do not reach it), no terminal, standard streams on /dev/null. It writes its record into
// each claim, lets the decision lock go, tells the prolog it is ready, and holds.
[[noreturn]] void become_holder(const lock::LockDir& dir,
                                lock::DecisionLock& decision,
                                Holding holding,
                                Fd ready_write,
                                const core::ProcessEnvironment& env) {
    ::setsid();
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        ::dup2(null, STDIN_FILENO);
        ::dup2(null, STDOUT_FILENO);
        ::dup2(null, STDERR_FILENO);
    }
    const auto record = holder_record(holding.job.job_id, holding.job.user);
    for (auto& claim : holding.held) {
        (void)claim.record_holder(record);
    }
    decision.release();
    const char byte = 1;
    (void)!::write(ready_write.get(), &byte, 1);
    ready_write.reset();
    close_other_descriptors(holding.held, dir.fd());
    hold(dir, std::move(holding), env);
}

// Forks the claim holder and returns once it says it is ready (its record written, the
// decision lock released): the prolog then ends, and slurmd starts the job.
Result<int> start_holder(const lock::LockDir& dir,
                         lock::DecisionLock& decision,
                         Holding holding,
                         const core::ProcessEnvironment& env) {
    const std::string job_id = holding.job.job_id; // `holding` moves to the child
    std::array<int, 2> ready_pipe{};
    if (::pipe2(ready_pipe.data(), O_CLOEXEC) != 0) {
        return fail(ErrorKind::failed, fmt::format("pipe failed: {}", errno_text(errno)));
    }
    Fd ready_read(ready_pipe[0]);
    Fd ready_write(ready_pipe[1]);
    const pid_t child = ::fork();
    if (child < 0) {
        return fail(ErrorKind::failed, fmt::format("fork failed: {}", errno_text(errno)));
    }
    if (child == 0) {
        ready_read.reset();
        become_holder(dir, decision, std::move(holding), std::move(ready_write), env);
    }
    ready_write.reset();
    char byte = 0;
    ssize_t n = 0;
    do {
        n = ::read(ready_read.get(), &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
        return fail(ErrorKind::failed,
                    fmt::format("the claim holder for job {} (pid {}) ended before it was ready",
                                job_id,
                                child));
    }
    return exit_ok;
}

} // namespace

Result<int> slurm_gres_conf_command(const cli::Options& options) {
    auto opened = core::open_machine(options.launch.nvml_library);
    if (!opened) {
        return tl::unexpected(opened.error());
    }
    auto* machine = &opened->snapshot;
    auto text = slurm::gres_conf(*machine, short_host_name(), core_of_cpu());
    if (!text) {
        return tl::unexpected(text.error());
    }
    fmt::print("{}", *text);
    return exit_ok;
}

Result<int> slurm_prolog_command(const cli::Options& options, const core::ProcessEnvironment& env) {
    auto job = job_identity(env, "--slurm-prolog");
    if (!job) {
        return tl::unexpected(job.error());
    }
    auto gpus = job_gpus(env);
    if (!gpus) {
        return tl::unexpected(gpus.error());
    }
    if (gpus->minor_numbers.empty()) {
        return exit_ok; // a job without GPUs: nothing to hold
    }
    auto uuids = job_uuids(options.launch.nvml_library, job->job_id, *gpus);
    if (!uuids) {
        return tl::unexpected(uuids.error());
    }
    auto dir = lock::LockDir::open(options.launch.lock_dir, true);
    if (!dir) {
        return tl::unexpected(dir.error());
    }
    Holding holding{{}, {}, *job, options.launch.poll};
    // The decision lock is held from the first claim until the holder has written its record.
    auto decision = decision_lock(*dir, lock::DecisionLock::Mode::exclusive);
    if (!decision) {
        return tl::unexpected(decision.error());
    }
    auto missing = claim_each_free(*dir, *uuids, holding.held, nullptr);
    if (!missing) {
        return tl::unexpected(missing.error());
    }
    holding.missing = std::move(*missing);
    for (const auto& uuid : holding.missing) {
        fmt::print(stderr,
                   "with-gpu: --slurm-prolog: job {}: {} is claimed by a with-gpu user; the "
                   "holder takes it when it is released (see docs/slurm.md)\n",
                   job->job_id,
                   uuid);
    }
    return start_holder(*dir, *decision, std::move(holding), env);
}

Result<int> slurm_epilog_command(const cli::Options& options, const core::ProcessEnvironment& env) {
    auto job = job_identity(env, "--slurm-epilog");
    if (!job) {
        return tl::unexpected(job.error());
    }
    if (!std::filesystem::exists(options.launch.lock_dir)) {
        return exit_ok;
    }
    auto dir = lock::LockDir::open(options.launch.lock_dir, false);
    if (!dir) {
        return tl::unexpected(dir.error());
    }
    // The holders of this job, from the claim records; only a live with-gpu --slurm-prolog
    // process is signalled.
    std::set<int> holders;
    {
        auto opened = core::open_machine(options.launch.nvml_library);
        if (!opened) {
            return tl::unexpected(opened.error());
        }
        auto* machine = &opened->snapshot;
        auto shared = decision_lock(*dir, lock::DecisionLock::Mode::shared);
        if (!shared) {
            return tl::unexpected(shared.error());
        }
        auto claims = lock::read_claims(*dir, machine->uuids());
        if (!claims) {
            return tl::unexpected(claims.error());
        }
        for (const auto& [uuid, holder] : *claims) {
            if (holder.slurm_job == job->job_id && holder.pid && *holder.pid > 1 &&
                is_holder(*holder.pid)) {
                holders.insert(*holder.pid);
            }
        }
    }
    for (const int pid : holders) {
        end_holder(pid);
    }
    // The lock directory the job's own with-gpu launches shared among themselves.
    lock::remove_lock_dir(core::job_lock_dir(options.launch.lock_dir, job->job_id));
    return exit_ok;
}

} // namespace withgpu::app
