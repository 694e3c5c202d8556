#include "procfs/process_info.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <fstream>
#include <optional>
#include <pwd.h>
#include <spawn.h>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ; // NOLINT(cppcoreguidelines-avoid-non-const-global-variables): POSIX

namespace withgpu::procfs {
namespace {

// Polls `condition` until it holds or a generous deadline passes (the machine may be loaded).
template <typename Condition> bool eventually(Condition condition) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return condition();
}

// The one-letter state from /proc/<pid>/stat ("pid (comm) S ..."); comm may hold spaces.
char process_state(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() ? line[close + 2] : '?';
}

TEST(ProcessInfo, ReadsOwnUserAndCommand) {
    const ProcessDetails details = read_process_details(::getpid());
    ASSERT_TRUE(details.user.has_value());
    EXPECT_EQ(*details.user, user_name(::getuid()));
    ASSERT_TRUE(details.command.has_value());
    EXPECT_NE(details.command->find("nvml_tests"), std::string::npos) << *details.command;
}

TEST(ProcessInfo, JoinsArgumentsWithSpaces) {
    char arg0[] = "sleep";
    char arg1[] = "1000";
    char* argv[] = {arg0, arg1, nullptr};
    pid_t child = 0;
    ASSERT_EQ(::posix_spawnp(&child, "sleep", nullptr, nullptr, argv, environ), 0);

    // Until exec completes the child still shows this test's command line.
    std::optional<std::string> command;
    const bool seen = eventually([child, &command] {
        command = read_process_details(child).command;
        return command == std::string("sleep 1000");
    });
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(seen) << "last seen: " << command.value_or("(none)");
}

TEST(ProcessInfo, EmptyCommandLineFallsBackToBracketedComm) {
    // A zombie has an empty cmdline but keeps its comm, like a kernel thread.
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::_exit(0);
    }
    const bool zombie = eventually([child] { return process_state(child) == 'Z'; });
    const ProcessDetails details = read_process_details(child);
    int status = 0;
    ::waitpid(child, &status, 0);

    ASSERT_TRUE(zombie);
    ASSERT_TRUE(details.command.has_value());
    EXPECT_EQ(*details.command, "[nvml_tests]");
    EXPECT_EQ(details.user, user_name(::getuid()));
}

TEST(ProcessInfo, MissingProcessHasNoDetails) {
    // pid_max itself is never handed out.
    std::ifstream pid_max_file("/proc/sys/kernel/pid_max");
    long pid_max = 0;
    ASSERT_TRUE(pid_max_file >> pid_max);
    const ProcessDetails details = read_process_details(static_cast<pid_t>(pid_max));
    EXPECT_FALSE(details.user.has_value());
    EXPECT_FALSE(details.command.has_value());

    const ProcessDetails invalid = read_process_details(-1);
    EXPECT_FALSE(invalid.user.has_value());
    EXPECT_FALSE(invalid.command.has_value());
}

TEST(ProcessInfo, UserNameOfRootAndOfUnknownUid) {
    EXPECT_EQ(user_name(0), "root");

    const uid_t unknown = 3999999999U;
    if (::getpwuid(unknown) != nullptr) {
        GTEST_SKIP() << "uid " << unknown << " exists here";
    }
    EXPECT_EQ(user_name(unknown), "3999999999");
}

TEST(OpenFilesTest, ListsEveryDescriptorOfThisProcessByIdentity) {
    char path[] = "/tmp/with-gpu-open-files-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    struct stat info {};
    ASSERT_EQ(::fstat(fd, &info), 0);
    const FileId id{info.st_dev, info.st_ino};
    auto files = open_files();
    EXPECT_NE(std::find(files.begin(), files.end(), id), files.end());
    ::close(fd);
    files = open_files();
    EXPECT_EQ(std::find(files.begin(), files.end(), id), files.end());
    ::unlink(path);
}

} // namespace
} // namespace withgpu::procfs

namespace withgpu::procfs {
namespace {

TEST(ProcessFamily, ParentsAndDescendantsComeFromProc) {
    EXPECT_EQ(parent_pid(::getpid()), ::getppid());
    EXPECT_EQ(parent_pid(0), std::nullopt);
    EXPECT_TRUE(descends_from(::getpid(), ::getpid()));
    EXPECT_TRUE(descends_from(::getpid(), ::getppid()));
    EXPECT_FALSE(descends_from(::getppid(), ::getpid()));
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::pause();
        ::_exit(0);
    }
    EXPECT_EQ(parent_pid(child), ::getpid());
    EXPECT_TRUE(descends_from(child, ::getpid()));
    EXPECT_TRUE(descends_from(child, ::getppid()));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_EQ(parent_pid(child), std::nullopt); // gone
}

} // namespace
} // namespace withgpu::procfs
