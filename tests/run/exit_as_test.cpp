// exit_as ends the process, so each case runs in a forked process.
#include "process_helpers.hpp"
#include "run/command.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <sys/resource.h>
#include <unistd.h>

namespace withgpu::run {
namespace {

using withgpu::testing::fork_process;
using withgpu::testing::TempDir;
using withgpu::testing::wait_for;

int exit_status_of(const ExitStatus& status, const std::function<void()>& prepare = {}) {
    const pid_t pid = fork_process([&]() -> int {
        if (prepare) {
            prepare();
        }
        exit_as(status);
    });
    const auto waited = wait_for(pid);
    if (!waited) {
        ADD_FAILURE() << "the forked process did not end";
        return -1;
    }
    return *waited;
}

void ignore_signal(int /*signal*/) {}

TEST(ExitAs, ExitsWithTheCode) {
    for (const int code : {0, 1, 42, 255}) {
        const int status = exit_status_of(ExitStatus{code, 0, false});
        ASSERT_TRUE(WIFEXITED(status)) << code;
        EXPECT_EQ(WEXITSTATUS(status), code);
    }
}

TEST(ExitAs, DiesOfTheSignal) {
    for (const int signal : {SIGTERM, SIGINT, SIGHUP, SIGKILL, SIGUSR1}) {
        const int status = exit_status_of(ExitStatus{0, signal, false});
        ASSERT_TRUE(WIFSIGNALED(status)) << signal;
        EXPECT_EQ(WTERMSIG(status), signal);
    }
}

TEST(ExitAs, DiesOfTheSignalEvenIfItWasCaughtAndBlocked) {
    const int status = exit_status_of(ExitStatus{0, SIGTERM, false}, [] {
        struct sigaction action {};
        action.sa_handler = ignore_signal;
        sigemptyset(&action.sa_mask);
        ::sigaction(SIGTERM, &action, nullptr);
        ::sigaction(SIGQUIT, &action, nullptr);
        sigset_t blocked;
        sigfillset(&blocked);
        ::sigprocmask(SIG_BLOCK, &blocked, nullptr);
    });
    ASSERT_TRUE(WIFSIGNALED(status));
    EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

TEST(ExitAs, DiesOfACrashSignalWithoutDumpingCore) {
    // With a core limit the kernel would honour, in a directory a core could be written to,
    // exit_as must still not dump.
    TempDir temp;
    const int status = exit_status_of(ExitStatus{0, SIGSEGV, true}, [&] {
        struct rlimit limit {};
        ::getrlimit(RLIMIT_CORE, &limit);
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_CORE, &limit);
        if (::chdir(temp.path().c_str()) != 0) {
            ::_exit(97);
        }
    });
    ASSERT_TRUE(WIFSIGNALED(status)) << status;
    EXPECT_EQ(WTERMSIG(status), SIGSEGV);
    EXPECT_FALSE(WCOREDUMP(status));
}

TEST(ExitAs, SignalThatDoesNotKillBecomesExitCode) {
    for (const int signal : {SIGWINCH, SIGCHLD, SIGTSTP}) {
        const int status = exit_status_of(ExitStatus{0, signal, false});
        ASSERT_TRUE(WIFEXITED(status)) << signal;
        EXPECT_EQ(WEXITSTATUS(status), 128 + signal);
    }
}

TEST(ExitAs, FlushesBufferedOutput) {
    withgpu::testing::Pipe output;
    const pid_t pid = fork_process([&]() -> int {
        ::dup2(output.write.get(), STDOUT_FILENO);
        std::fputs("buffered, no newline", stdout);
        exit_as(ExitStatus{0, SIGTERM, false});
    });
    output.write.reset();
    EXPECT_EQ(withgpu::testing::read_all(output.read.get()), "buffered, no newline");
    const auto status = wait_for(pid);
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFSIGNALED(*status));
}

} // namespace
} // namespace withgpu::run
