// Signals are sent to a forked supervisor (a process that calls run_and_wait), never to the
// test runner.
#include "process_helpers.hpp"
#include "run/command.hpp"
#include "run/signal_forwarder.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace withgpu::run {
namespace {

using withgpu::testing::fork_process;
using withgpu::testing::Pipe;
using withgpu::testing::read_line;
using withgpu::testing::wait_for;

// Prints "ready" once its traps are set, then loops until a signal ends it.
constexpr const char* k_loop = "echo ready; while :; do sleep 0.05; done";

void set_disposition(int signal, void (*handler)(int)) {
    struct sigaction action {};
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    ::sigaction(signal, &action, nullptr);
}

// The forked supervisor starts from a known state, whatever the runner inherited.
void reset_signals() {
    for (const int signal : k_forwarded_signals) {
        set_disposition(signal, SIG_DFL);
    }
    sigset_t empty;
    sigemptyset(&empty);
    ::sigprocmask(SIG_SETMASK, &empty, nullptr);
}

void write_line(int fd, const std::string& line) {
    const std::string text = line + "\n";
    [[maybe_unused]] const ssize_t ignored = ::write(fd, text.data(), text.size());
}

// A supervisor running `script` with its stdout on a pipe. It reports "pid N" when the child
// has started and "code C signal S" (or "error ...") when run_and_wait returns.
class Supervisor {
  public:
    explicit Supervisor(const std::string& script, const std::function<void()>& prepare = {}) {
        Pipe output;
        Pipe report;
        m_pid = fork_process([&] {
            reset_signals();
            if (prepare) {
                prepare();
            }
            ::dup2(output.write.get(), STDOUT_FILENO);
            auto command = resolve_command({"sh", "-c", script}, std::nullopt);
            if (!command) {
                write_line(report.write.get(), "error " + command.error().message);
                return 1;
            }
            const auto status = run_and_wait(*command, {"PATH=/usr/bin:/bin"}, {}, [&](pid_t pid) {
                write_line(report.write.get(), fmt::format("pid {}", pid));
            });
            if (!status) {
                write_line(report.write.get(), "error " + status.error().message);
                return 1;
            }
            write_line(report.write.get(),
                       fmt::format("code {} signal {}", status->code, status->signal));
            return 0;
        });
        m_output = std::move(output.read);
        m_report = std::move(report.read);
    }
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;
    ~Supervisor() {
        // Only after a failure is anything left: end it rather than leave it looping.
        if (m_child > 0) {
            ::kill(m_child, SIGKILL);
        }
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            wait_for(m_pid);
        }
    }

    [[nodiscard]] pid_t pid() const { return m_pid; }

    // Waits until the child has said "ready" and the supervisor has reported its pid.
    [[nodiscard]] ::testing::AssertionResult wait_until_ready() {
        const auto ready = read_line(m_output.get());
        if (ready != "ready") {
            return ::testing::AssertionFailure() << "child said: " << ready.value_or("<nothing>");
        }
        const auto started = read_line(m_report.get());
        if (!started || started->rfind("pid ", 0) != 0) {
            return ::testing::AssertionFailure()
                   << "supervisor said: " << started.value_or("<nothing>");
        }
        m_child = static_cast<pid_t>(std::stol(started->substr(4)));
        return ::testing::AssertionSuccess();
    }

    // The supervisor's final report, once it has exited normally.
    [[nodiscard]] std::string result() {
        const auto line = read_line(m_report.get());
        if (!line) {
            return "<no report>"; // the destructor ends what is left
        }
        const auto status = wait_for(m_pid);
        m_pid = -1;
        if (status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0) {
            m_child = -1;
        }
        return *line;
    }

  private:
    pid_t m_pid = -1;
    pid_t m_child = -1;
    Fd m_output;
    Fd m_report;
};

TEST(ShouldForward, OnlySignalsSentByAProcess) {
    EXPECT_TRUE(should_forward(SI_USER));
    EXPECT_TRUE(should_forward(SI_QUEUE));
    EXPECT_TRUE(should_forward(SI_TKILL));
    EXPECT_FALSE(should_forward(SI_KERNEL));
    EXPECT_FALSE(should_forward(1)); // any positive code is the kernel's own
}

class ForwardedSignalTest : public ::testing::TestWithParam<int> {};

TEST_P(ForwardedSignalTest, ReachesTheCommand) {
    const int signal = GetParam();
    const std::string name = sigabbrev_np(signal);
    Supervisor supervisor(fmt::format("trap 'exit 7' {}; {}", name, k_loop));
    ASSERT_TRUE(supervisor.wait_until_ready());
    ASSERT_EQ(::kill(supervisor.pid(), signal), 0);
    EXPECT_EQ(supervisor.result(), "code 7 signal 0") << "signal " << name;
}

INSTANTIATE_TEST_SUITE_P(AllForwarded,
                         ForwardedSignalTest,
                         ::testing::ValuesIn(k_forwarded_signals.begin(),
                                             k_forwarded_signals.end()),
                         [](const auto& param_info) {
                             return std::string(sigabbrev_np(param_info.param));
                         });

TEST(SignalForwarding, CommandThatDoesNotCatchItDiesOfIt) {
    Supervisor supervisor(k_loop);
    ASSERT_TRUE(supervisor.wait_until_ready());
    ASSERT_EQ(::kill(supervisor.pid(), SIGTERM), 0);
    EXPECT_EQ(supervisor.result(), fmt::format("code 0 signal {}", SIGTERM));
}

TEST(SignalForwarding, SignalsIgnoredByOurParentStayIgnored) {
    // As under nohup: HUP is ignored by the supervisor and therefore by the command, so the
    // HUP does nothing and the TERM after it ends the command.
    Supervisor supervisor(k_loop, [] { set_disposition(SIGHUP, SIG_IGN); });
    ASSERT_TRUE(supervisor.wait_until_ready());
    ASSERT_EQ(::kill(supervisor.pid(), SIGHUP), 0);
    ASSERT_EQ(::kill(supervisor.pid(), SIGTERM), 0);
    EXPECT_EQ(supervisor.result(), fmt::format("code 0 signal {}", SIGTERM));
}

// The command starts with default dispositions for the forwarded signals, an empty mask, and
// the SIG_IGN dispositions our parent gave us; the supervisor gets its own back afterwards.
std::uint64_t status_mask(const std::string& status, const std::string& field) {
    const auto at = status.find(field + ":");
    if (at == std::string::npos) {
        return ~0ULL;
    }
    return std::stoull(status.substr(at + field.size() + 1), nullptr, 16);
}

std::uint64_t bit(int signal) {
    return 1ULL << (signal - 1);
}

void count_signal(int /*signal*/) {}

TEST(SignalForwarding, CommandStartsWithCleanSignalState) {
    Pipe output;
    const pid_t pid = fork_process([&] {
        reset_signals();
        set_disposition(SIGHUP, SIG_IGN);       // as nohup gives it: stays ignored
        set_disposition(SIGUSR2, count_signal); // caught by us: default in the child
        sigset_t blocked;
        sigemptyset(&blocked);
        sigaddset(&blocked, SIGUSR1);
        sigaddset(&blocked, SIGWINCH);
        ::sigprocmask(SIG_BLOCK, &blocked, nullptr);

        ::dup2(output.write.get(), STDOUT_FILENO);
        auto command = resolve_command({"cat", "/proc/self/status"}, std::nullopt);
        if (!command || !run_and_wait(*command, {}, {}, JobHooks{})) {
            return 1;
        }
        // Our own state is back as it was.
        struct sigaction action {};
        ::sigaction(SIGUSR2, nullptr, &action);
        if (action.sa_handler != count_signal) {
            return 2;
        }
        ::sigaction(SIGHUP, nullptr, &action);
        if (action.sa_handler != SIG_IGN) {
            return 3;
        }
        ::sigaction(SIGTERM, nullptr, &action);
        if (action.sa_handler != SIG_DFL) {
            return 4;
        }
        sigset_t now;
        ::sigprocmask(SIG_BLOCK, nullptr, &now);
        if (sigismember(&now, SIGUSR1) != 1 || sigismember(&now, SIGWINCH) != 1 ||
            sigismember(&now, SIGTERM) != 0) {
            return 5;
        }
        return 0;
    });
    output.write.reset();
    const std::string status = withgpu::testing::read_all(output.read.get());
    const auto exited = wait_for(pid);
    ASSERT_TRUE(exited && WIFEXITED(*exited));
    EXPECT_EQ(WEXITSTATUS(*exited), 0) << "2-5: the supervisor's own signal state changed";

    EXPECT_EQ(status_mask(status, "SigBlk"), 0U) << status;
    const std::uint64_t ignored = status_mask(status, "SigIgn");
    EXPECT_NE(ignored & bit(SIGHUP), 0U) << status;
    for (const int signal : {SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2}) {
        EXPECT_EQ(ignored & bit(signal), 0U) << sigabbrev_np(signal) << "\n" << status;
    }
    EXPECT_EQ(status_mask(status, "SigCgt"), 0U) << status;
}

} // namespace
} // namespace withgpu::run
