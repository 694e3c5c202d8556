#include "run/command.hpp"

#include "os/errno_text.hpp"
#include "os/process_handle.hpp"
#include "run/signal_forwarder.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <iostream>
#include <pthread.h>
#include <spawn.h>
#include <string_view>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>

namespace withgpu::run {

namespace {

constexpr std::string_view k_default_path = "/usr/local/bin:/usr/bin:/bin";

std::string display_name(const std::string& name) {
    return name.empty() ? std::string("''") : name;
}

// What execve would make of one candidate path: 0 if it can run, otherwise the errno that
// explains why not (ENOENT for "nothing there").
int check_candidate(const std::string& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
        return errno == EACCES ? EACCES : ENOENT;
    }
    if (S_ISDIR(info.st_mode)) {
        return EISDIR;
    }
    // execve refuses anything but a regular file with EACCES.
    if (!S_ISREG(info.st_mode)) {
        return EACCES;
    }
    if (::faccessat(AT_FDCWD, path.c_str(), X_OK, AT_EACCESS) != 0) {
        return EACCES;
    }
    return 0;
}

tl::unexpected<Error> not_executable(const std::string& path, int error) {
    std::string hint;
    switch (error) {
    case EISDIR:
        hint = "name a program, not a directory";
        break;
    case ENOEXEC:
        hint = "give the script a #! line naming its interpreter, or run it through one "
               "(e.g. `sh script`)";
        break;
    default:
        hint = fmt::format("make it executable (chmod +x {}) and check the permissions of its "
                           "directories",
                           path);
        break;
    }
    return fail(ErrorKind::not_executable,
                fmt::format("cannot execute {}: {}", path, errno_text(error)),
                std::move(hint));
}

tl::unexpected<Error> not_found(const std::string& name) {
    const bool is_path = name.find('/') != std::string::npos;
    return fail(ErrorKind::not_found,
                fmt::format("command not found: {}", display_name(name)),
                is_path ? "no such file; check the path (for a script, also the interpreter on "
                          "its #! line)"
                        : "check the spelling, and that the program's directory is in PATH");
}

// An argv or envp for posix_spawn: its own copies of the strings, null-terminated.
class CStringArray {
  public:
    explicit CStringArray(const std::vector<std::string>& strings) : m_strings(strings) {
        m_pointers.reserve(m_strings.size() + 1);
        for (std::string& string : m_strings) {
            m_pointers.push_back(string.data());
        }
        m_pointers.push_back(nullptr);
    }
    CStringArray(const CStringArray&) = delete;
    CStringArray& operator=(const CStringArray&) = delete;
    ~CStringArray() = default;

    [[nodiscard]] char* const* get() noexcept { return m_pointers.data(); }

  private:
    std::vector<std::string> m_strings;
    std::vector<char*> m_pointers;
};

class SpawnFileActions {
  public:
    SpawnFileActions() noexcept : m_ok(::posix_spawn_file_actions_init(&m_actions) == 0) {}
    SpawnFileActions(const SpawnFileActions&) = delete;
    SpawnFileActions& operator=(const SpawnFileActions&) = delete;
    ~SpawnFileActions() {
        if (m_ok) {
            ::posix_spawn_file_actions_destroy(&m_actions);
        }
    }
    [[nodiscard]] bool ok() const noexcept { return m_ok; }
    [[nodiscard]] posix_spawn_file_actions_t* get() noexcept { return &m_actions; }

  private:
    posix_spawn_file_actions_t m_actions{};
    bool m_ok = false;
};

class SpawnAttributes {
  public:
    SpawnAttributes() noexcept : m_ok(::posix_spawnattr_init(&m_attributes) == 0) {}
    SpawnAttributes(const SpawnAttributes&) = delete;
    SpawnAttributes& operator=(const SpawnAttributes&) = delete;
    ~SpawnAttributes() {
        if (m_ok) {
            ::posix_spawnattr_destroy(&m_attributes);
        }
    }
    [[nodiscard]] bool ok() const noexcept { return m_ok; }
    [[nodiscard]] posix_spawnattr_t* get() noexcept { return &m_attributes; }

  private:
    posix_spawnattr_t m_attributes{};
    bool m_ok = false;
};

tl::unexpected<Error> spawn_error(const ResolvedCommand& command, int error) {
    switch (error) {
    case ENOENT:
        return not_found(command.path);
    case EACCES:
    case ENOEXEC:
    case EISDIR:
        return not_executable(command.path, error);
    default:
        return fail(
            ErrorKind::failed,
            fmt::format("cannot start {}: posix_spawn: {}", command.path, errno_text(error)),
            error == E2BIG ? "the arguments and environment are too large"
                           : "check the system's process and memory limits");
    }
}

ExitStatus exit_status_from(int wait_status) {
    ExitStatus status;
    if (WIFSIGNALED(wait_status)) {
        status.signal = WTERMSIG(wait_status);
        status.core_dumped = WCOREDUMP(wait_status);
    } else {
        status.code = WEXITSTATUS(wait_status);
    }
    return status;
}

tl::unexpected<Error> wait_error(pid_t pid, int error) {
    return fail(ErrorKind::failed,
                fmt::format("waiting for the command (pid {}) failed: {}", pid, errno_text(error)),
                "this is a bug in with-gpu or its environment; the command may still be running");
}

// Whether a signal's default action ends the process (rather than ignoring it or stopping it).
bool default_action_terminates(int signal) {
    switch (signal) {
    case SIGCHLD:
    case SIGCONT:
    case SIGURG:
    case SIGWINCH:
    case SIGSTOP:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
        return false;
    default:
        return signal > 0 && signal < NSIG;
    }
}

} // namespace

Result<ResolvedCommand> resolve_command(const std::vector<std::string>& argv,
                                        const std::optional<std::string>& path_env) {
    if (argv.empty()) {
        return fail(ErrorKind::usage,
                    "no command given",
                    "put the command to run after the options, e.g. `with-gpu -n 1 -- python "
                    "train.py`");
    }
    const std::string& name = argv.front();
    if (name.empty()) {
        return not_found(name);
    }

    if (name.find('/') != std::string::npos) {
        const int error = check_candidate(name);
        if (error == ENOENT) {
            return not_found(name);
        }
        if (error != 0) {
            return not_executable(name, error);
        }
        return ResolvedCommand{name, argv};
    }

    // As execvp: the first executable candidate wins; if there is none, a candidate that
    // exists but cannot be executed explains the failure better than "not found".
    const std::string_view path = path_env ? std::string_view(*path_env) : k_default_path;
    std::optional<std::pair<std::string, int>> first_denied;
    std::size_t start = 0;
    while (true) {
        const std::size_t end = std::min(path.find(':', start), path.size());
        const std::string_view dir = path.substr(start, end - start);
        std::string candidate = dir.empty() ? "./" + name : fmt::format("{}/{}", dir, name);
        const int error = check_candidate(candidate);
        if (error == 0) {
            return ResolvedCommand{std::move(candidate), argv};
        }
        if (error != ENOENT && !first_denied) {
            first_denied.emplace(std::move(candidate), error);
        }
        if (end == path.size()) {
            break;
        }
        start = end + 1;
    }
    if (first_denied) {
        return not_executable(first_denied->first, first_denied->second);
    }
    return not_found(name);
}

Result<ExitStatus> run_and_wait(const ResolvedCommand& command,
                                const std::vector<std::string>& env,
                                const std::vector<int>& inherit_fds,
                                const JobHooks& hooks) {
    SpawnFileActions actions;
    SpawnAttributes attributes;
    if (!actions.ok() || !attributes.ok()) {
        return fail(
            ErrorKind::failed,
            fmt::format("cannot start {}: out of memory preparing posix_spawn", command.path));
    }
    for (const int fd : inherit_fds) {
        if (::fcntl(fd, F_GETFD) == -1) {
            return fail(
                ErrorKind::failed,
                fmt::format(
                    "cannot pass descriptor {} to {}: {}", fd, command.path, errno_text(errno)),
                "this is a bug in with-gpu; please report it");
        }
        // dup2 onto itself clears FD_CLOEXEC in the child only (POSIX 2017, glibc >= 2.29):
        // our copy stays close-on-exec, and no other thread's spawn can leak it meanwhile.
        if (const int error = ::posix_spawn_file_actions_adddup2(actions.get(), fd, fd);
            error != 0) {
            return fail(
                ErrorKind::failed,
                fmt::format(
                    "cannot pass descriptor {} to {}: {}", fd, command.path, errno_text(error)));
        }
    }

    CStringArray argv(command.argv);
    CStringArray envp(env);

    // 1. Signals are blocked before the handlers go in and until the child's pid is published,
    //    so a signal that arrives meanwhile is forwarded late instead of lost.
    // 2. If spawning fails, the forwarder is destroyed (dispositions restored) before the
    //    blocker lets a pending signal in, which then acts on with-gpu as it would have anyway.
    SignalBlocker blocker(forwarded_signal_set());
    SignalForwarder forwarder;

    sigset_t empty_mask;
    sigemptyset(&empty_mask);
    ::posix_spawnattr_setflags(attributes.get(),
                               static_cast<short>(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
    ::posix_spawnattr_setsigmask(attributes.get(), &empty_mask);
    ::posix_spawnattr_setsigdefault(attributes.get(), &forwarder.handled());

    pid_t pid = -1;
    if (const int error = ::posix_spawn(
            &pid, command.path.c_str(), actions.get(), attributes.get(), argv.get(), envp.get());
        error != 0) {
        forwarder.restore();
        return spawn_error(command, error);
    }
    forwarder.set_child(pid);
    blocker.unblock();

    if (hooks.started) {
        hooks.started(pid);
    }
    if (hooks.still_running &&
        (hooks.after.count() <= 0 || !ProcessHandle::open(pid).ends_within(hooks.after))) {
        hooks.still_running(pid);
    }

    // 3. Wait without reaping: while the child is a zombie its pid cannot be reused, so the
    //    handler may still kill() it safely. Forwarding stops before the pid is released.
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0) {
        if (errno != EINTR) {
            return wait_error(pid, errno);
        }
    }
    SignalBlocker reaping(forwarded_signal_set());
    forwarder.restore();

    int wait_status = 0;
    while (::waitpid(pid, &wait_status, 0) == -1) {
        if (errno != EINTR) {
            return wait_error(pid, errno);
        }
    }
    return exit_status_from(wait_status);
}

// _exit rather than std::exit: with-gpu's exit status must be the command's, and std::exit
// would first run static destructors and atexit handlers (a dlopen'ed driver's among them),
// which the death-by-signal path never runs either. Our claims need no cleanup: the kernel
// drops the flocks when it closes the descriptors. Buffered output is flushed by hand.
void exit_as(const ExitStatus& status) {
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);

    if (status.signal == 0) {
        ::_exit(status.code);
    }

    const int signal = status.signal;
    if (default_action_terminates(signal)) {
        // The command's crash has been dealt with (or dumped) already; ours adds nothing.
        struct rlimit core {};
        if (::getrlimit(RLIMIT_CORE, &core) == 0) {
            core.rlim_cur = 0;
            ::setrlimit(RLIMIT_CORE, &core);
        }
        struct sigaction default_action {};
        default_action.sa_handler = SIG_DFL;
        sigemptyset(&default_action.sa_mask);
        ::sigaction(signal, &default_action, nullptr);

        sigset_t just_this;
        sigemptyset(&just_this);
        sigaddset(&just_this, signal);
        ::pthread_sigmask(SIG_UNBLOCK, &just_this, nullptr);
        ::raise(signal);
    }
    // Still alive: the signal does not end a process (or is out of range).
    ::_exit(128 + signal);
}

Result<ExitStatus> run_and_wait(const ResolvedCommand& command,
                                const std::vector<std::string>& env,
                                const std::vector<int>& inherit_fds,
                                const std::function<void(pid_t)>& on_started) {
    return run_and_wait(command, env, inherit_fds, JobHooks{on_started, {}, {}});
}

} // namespace withgpu::run
