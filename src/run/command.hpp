// Running the user's command as a supervised child: resolve it, start it with
// the claim descriptors inherited, pass signals on, and report how it ended.
#pragma once

#include "util/error.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace withgpu::run {

struct ResolvedCommand {
    std::string path;              // what execve() gets
    std::vector<std::string> argv; // argv[0] as the user typed it
};

// Finds argv[0] the way execvp does: a name containing '/' is used as is, otherwise each
// PATH entry is tried ("" entry = current directory; unset PATH = "/usr/local/bin:/usr/bin:/bin").
// Errors: ErrorKind::not_found ("command not found: foo"), ErrorKind::not_executable
// (exists but no execute permission, or a directory), each with a hint.
[[nodiscard]] Result<ResolvedCommand> resolve_command(const std::vector<std::string>& argv,
                                                      const std::optional<std::string>& path_env);

struct ExitStatus {
    int code = 0;   // exit code when signal == 0
    int signal = 0; // non-zero: the child died of this signal
    bool core_dumped = false;
};

// What the parent does while the job runs, on the thread that waits for it.
struct JobHooks {
    // As soon as the job exists, with its pid.
    std::function<void(pid_t)> started;
    // Once the job has run for `after`, if it still runs: a job that ends sooner never gets
    // it, so work a short job does not need is never done. Called at once when the kernel
    // cannot tell (no pidfd).
    std::chrono::milliseconds after{0};
    std::function<void(pid_t)> still_running;
};

// Starts the command (posix_spawn with default signal dispositions and an empty mask, same
// process group, stdin/stdout/stderr and terminal inherited), passes on TERM, HUP, INT,
// QUIT, USR1, USR2 that are sent to with-gpu by kill(2) (terminal-generated INT/QUIT already
// reach the child through its process group and are not sent twice), and waits for it.
// `env` is the child's whole environment as "NAME=value". `inherit_fds` stay open in the
// child (every other descriptor of ours is close-on-exec). Errors: spawn failures
// (ErrorKind::not_found / not_executable / environment).
[[nodiscard]] Result<ExitStatus> run_and_wait(const ResolvedCommand& command,
                                              const std::vector<std::string>& env,
                                              const std::vector<int>& inherit_fds,
                                              const JobHooks& hooks);

// The same, with only `on_started` (JobHooks::started).
[[nodiscard]] Result<ExitStatus> run_and_wait(const ResolvedCommand& command,
                                              const std::vector<std::string>& env,
                                              const std::vector<int>& inherit_fds,
                                              const std::function<void(pid_t)>& on_started);

// Ends with-gpu the way the child ended: exit(code), or death by the same signal (re-raised
// with the default disposition and core dumps disabled), or exit(128 + signal) if the signal
// does not kill.
[[noreturn]] void exit_as(const ExitStatus& status);

} // namespace withgpu::run
