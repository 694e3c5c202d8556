#include "os/process_handle.hpp"
#include "support/process.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <string>
#include <unistd.h>

namespace withgpu {
namespace {

using namespace std::chrono_literals;
using testing::exit_code_of;
using testing::fork_process;
using testing::k_deadline;

// The state letter of `pid` in /proc/PID/stat ('S': asleep), '?' if it cannot be read.
char state_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(in, line);
    const auto close = line.rfind(')'); // the command in parentheses may hold spaces
    return close == std::string::npos || close + 2 >= line.size() ? '?' : line[close + 2];
}

TEST(ProcessHandle, SeesAChildEndBeforeItIsReaped) {
    const pid_t child = fork_process([] { return 3; });
    const ProcessHandle handle = ProcessHandle::open(child);
    ASSERT_TRUE(handle.valid());
    EXPECT_TRUE(handle.ends_within(k_deadline)); // a broken wait would take the whole deadline
    EXPECT_EQ(exit_code_of(child), 3);           // still there to be reaped
}

TEST(ProcessHandle, ReportsAProcessThatOutlivesTheLimit) {
    const pid_t child = fork_process([] {
        ::pause();
        return 0;
    });
    const ProcessHandle handle = ProcessHandle::open(child);
    ASSERT_TRUE(handle.valid());
    EXPECT_FALSE(handle.ends_within(20ms));
    EXPECT_FALSE(handle.ends_within(0ms));
    ::kill(child, SIGKILL);
    EXPECT_TRUE(handle.ends_within(k_deadline));
    EXPECT_EQ(exit_code_of(child), 128 + SIGKILL);
}

TEST(ProcessHandle, ASignalDuringTheWaitDoesNotEndIt) {
    struct sigaction quiet {};
    quiet.sa_handler = [](int) {};
    struct sigaction previous {};
    ASSERT_EQ(::sigaction(SIGUSR1, &quiet, &previous), 0); // no SA_RESTART: poll sees EINTR
    const pid_t parent = ::getpid();
    const pid_t child = fork_process([parent] {
        while (state_of(parent) != 'S') { // until the parent sleeps in its wait
            ::usleep(1000);
        }
        ::kill(parent, SIGUSR1);
        ::usleep(50000);
        return 0;
    });
    const ProcessHandle handle = ProcessHandle::open(child);
    ASSERT_TRUE(handle.valid());
    EXPECT_TRUE(handle.ends_within(k_deadline));
    EXPECT_EQ(exit_code_of(child), 0);
    ::sigaction(SIGUSR1, &previous, nullptr);
}

TEST(ProcessHandle, AnInvalidHandleCannotTell) {
    const ProcessHandle handle = ProcessHandle::open(-1);
    EXPECT_FALSE(handle.valid());
    EXPECT_FALSE(handle.ends_within(1h)); // at once: nothing to wait on
}

} // namespace
} // namespace withgpu
