#include "process_helpers.hpp"
#include "run/command.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace withgpu::run {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using withgpu::testing::TempDir;

std::vector<std::string> test_env() {
    return {"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"};
}

ResolvedCommand shell(const std::string& script, std::vector<std::string> args = {}) {
    std::vector<std::string> argv{"sh", "-c", script, "sh"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto resolved = resolve_command(argv, std::nullopt);
    if (!resolved) {
        throw std::runtime_error(resolved.error().message);
    }
    return *resolved;
}

ExitStatus run_ok(const ResolvedCommand& command,
                  const std::vector<std::string>& env = test_env(),
                  const std::vector<int>& inherit_fds = {},
                  const std::function<void(pid_t)>& on_started = {}) {
    auto status = run_and_wait(command, env, inherit_fds, on_started);
    if (!status) {
        ADD_FAILURE() << status.error().message;
        return ExitStatus{-1, -1, false};
    }
    return *status;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

TEST(RunAndWait, ReportsExitCodes) {
    for (const int code : {0, 3, 255}) {
        const ExitStatus status = run_ok(shell("exit " + std::to_string(code)));
        EXPECT_EQ(status.code, code);
        EXPECT_EQ(status.signal, 0);
        EXPECT_FALSE(status.core_dumped);
    }
}

TEST(RunAndWait, ReportsDeathBySignal) {
    const ExitStatus term = run_ok(shell("kill -TERM $$"));
    EXPECT_EQ(term.signal, SIGTERM);
    EXPECT_EQ(term.code, 0);

    const ExitStatus killed = run_ok(shell("kill -KILL $$"));
    EXPECT_EQ(killed.signal, SIGKILL);

    // No core file: with the limit at 0 the kernel writes none.
    const ExitStatus segv = run_ok(shell("ulimit -c 0; kill -SEGV $$"));
    EXPECT_EQ(segv.signal, SIGSEGV);
    EXPECT_FALSE(segv.core_dumped);
}

TEST(RunAndWait, PassesArgumentsAsGiven) {
    TempDir temp;
    const fs::path out = temp.path() / "args";
    const ExitStatus status =
        run_ok(shell(R"(printf '%s|' "$0" "$@" > "$1")", {out.string(), "two words", "", "*"}));
    EXPECT_EQ(status.code, 0);
    EXPECT_EQ(read_file(out), "sh|" + out.string() + "|two words||*|");
}

TEST(RunAndWait, PassesExactlyTheGivenEnvironment) {
    TempDir temp;
    const fs::path out = temp.path() / "env";
    ASSERT_EQ(::setenv("WITH_GPU_RUN_TEST_UNLISTED", "leaked", 1), 0);
    std::vector<std::string> env = test_env();
    env.emplace_back("WITH_GPU_RUN_TEST_VAR=a value=with equals");
    const ExitStatus status = run_ok(shell("env > \"$1\"", {out.string()}), env);
    ::unsetenv("WITH_GPU_RUN_TEST_UNLISTED");
    EXPECT_EQ(status.code, 0);

    const std::string text = read_file(out);
    EXPECT_NE(text.find("WITH_GPU_RUN_TEST_VAR=a value=with equals\n"), std::string::npos) << text;
    EXPECT_NE(text.find("LC_ALL=C\n"), std::string::npos) << text;
    EXPECT_EQ(text.find("WITH_GPU_RUN_TEST_UNLISTED"), std::string::npos) << text;
}

TEST(RunAndWait, InheritsListedDescriptorsOnly) {
    TempDir temp;
    withgpu::Fd listed(
        ::open((temp.path() / "listed").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    withgpu::Fd unlisted(
        ::open((temp.path() / "unlisted").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_TRUE(listed);
    ASSERT_TRUE(unlisted);

    // Exit code bits: 1 = the listed descriptor is missing, 2 = the unlisted one is present.
    const std::string script = R"(r=0
test -e /proc/$$/fd/$1 || r=$((r + 1))
test -e /proc/$$/fd/$2 && r=$((r + 2))
echo through-inherited >&$1 || r=$((r + 4))
exit $r)";
    const ExitStatus status =
        run_ok(shell(script, {std::to_string(listed.get()), std::to_string(unlisted.get())}),
               test_env(),
               {listed.get()});
    EXPECT_EQ(status.code, 0) << "1: listed fd missing, 2: unlisted fd leaked, 4: write failed";
    EXPECT_EQ(read_file(temp.path() / "listed"), "through-inherited\n");

    // Our own copies are still close-on-exec.
    EXPECT_EQ(::fcntl(listed.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    EXPECT_EQ(::fcntl(unlisted.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

TEST(RunAndWait, DescriptorWithoutCloseOnExecStaysThatWay) {
    withgpu::testing::Pipe pipe;
    ASSERT_EQ(::fcntl(pipe.write.get(), F_SETFD, 0), 0);
    const ExitStatus status = run_ok(
        shell("echo hi >&$1", {std::to_string(pipe.write.get())}), test_env(), {pipe.write.get()});
    EXPECT_EQ(status.code, 0);
    EXPECT_EQ(::fcntl(pipe.write.get(), F_GETFD) & FD_CLOEXEC, 0);
    pipe.write.reset();
    EXPECT_EQ(withgpu::testing::read_all(pipe.read.get()), "hi\n");
}

TEST(RunAndWait, ClosedDescriptorIsAnEnvironmentError) {
    withgpu::testing::Pipe pipe;
    const int closed = pipe.write.get();
    pipe.write.reset();
    bool started = false;
    const auto status =
        run_and_wait(shell("exit 0"), test_env(), {closed}, [&](pid_t) { started = true; });
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().kind, ErrorKind::failed);
    EXPECT_NE(status.error().message.find(std::to_string(closed)), std::string::npos);
    EXPECT_FALSE(started);
}

TEST(RunAndWait, OnStartedGetsTheChildsPid) {
    TempDir temp;
    const fs::path out = temp.path() / "pid";
    pid_t reported = -1;
    const ExitStatus status =
        run_ok(shell("echo $$ > \"$1\"", {out.string()}), test_env(), {}, [&](pid_t pid) {
            reported = pid;
        });
    EXPECT_EQ(status.code, 0);
    EXPECT_GT(reported, 0);
    EXPECT_EQ(read_file(out), std::to_string(reported) + "\n");
}

// JobHooks: what the parent does beside the job, and when.
struct HookCalls {
    std::vector<std::string> events;
    pid_t started = -1;
    pid_t still_running = -1;
};

JobHooks recording(HookCalls& calls, std::chrono::milliseconds after) {
    JobHooks hooks;
    hooks.started = [&calls](pid_t pid) {
        calls.events.emplace_back("started");
        calls.started = pid;
    };
    hooks.after = after;
    hooks.still_running = [&calls](pid_t pid) {
        calls.events.emplace_back("still running");
        calls.still_running = pid;
    };
    return hooks;
}

TEST(RunAndWait, AJobThatEndsSoonerNeverGetsStillRunning) {
    HookCalls calls;
    // A wait that ignored the job's end would hang here for the hour.
    const auto status = run_and_wait(shell("exit 4"), test_env(), {}, recording(calls, 1h));
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_EQ(status->code, 4);
    EXPECT_EQ(calls.events, std::vector<std::string>{"started"});
}

TEST(RunAndWait, AJobThatOutlivesAfterGetsStillRunningOnceWhileItRuns) {
    HookCalls calls;
    JobHooks hooks = recording(calls, 20ms);
    const auto record = hooks.still_running;
    hooks.still_running = [&](pid_t pid) {
        record(pid);
        EXPECT_EQ(::kill(pid, 0), 0); // not reaped yet: still ours to signal
        ::kill(pid, SIGTERM);
    };
    const auto status = run_and_wait(shell("exec sleep 60"), test_env(), {}, hooks);
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_EQ(status->signal, SIGTERM); // ended by still_running, not after a minute
    EXPECT_EQ(calls.events, (std::vector<std::string>{"started", "still running"}));
    EXPECT_EQ(calls.still_running, calls.started);
}

TEST(RunAndWait, WithoutAfterStillRunningFollowsStartedAtOnce) {
    HookCalls calls;
    const auto status = run_and_wait(shell("exit 0"), test_env(), {}, recording(calls, 0ms));
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_EQ(calls.events, (std::vector<std::string>{"started", "still running"}));
    EXPECT_EQ(calls.still_running, calls.started);
}

class SpawnErrorTest : public ::testing::Test {
  protected:
    Error spawn_error(const fs::path& path) {
        const auto status =
            run_and_wait(ResolvedCommand{path.string(), {"tool"}}, test_env(), {}, JobHooks{});
        EXPECT_FALSE(status);
        return status ? Error{} : status.error();
    }
    TempDir m_temp;
};

TEST_F(SpawnErrorTest, MissingFileIsNotFound) {
    const Error error = spawn_error(m_temp.path() / "gone");
    EXPECT_EQ(error.kind, ErrorKind::not_found);
    EXPECT_EQ(error.message, "command not found: " + (m_temp.path() / "gone").string());
}

TEST_F(SpawnErrorTest, FileWithoutPermissionIsNotExecutable) {
    const fs::path file = m_temp.path() / "plain";
    std::ofstream(file) << "#!/bin/sh\n";
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
    const Error error = spawn_error(file);
    EXPECT_EQ(error.kind, ErrorKind::not_executable);
    EXPECT_EQ(error.message, "cannot execute " + file.string() + ": Permission denied");
}

TEST_F(SpawnErrorTest, UnknownFormatIsNotExecutable) {
    const fs::path file = m_temp.path() / "no-shebang";
    std::ofstream(file) << "echo a script without its #! line\n";
    fs::permissions(file, fs::perms::owner_all);
    const Error error = spawn_error(file);
    EXPECT_EQ(error.kind, ErrorKind::not_executable);
    EXPECT_EQ(error.message, "cannot execute " + file.string() + ": Exec format error");
    EXPECT_NE(error.hint.find("#!"), std::string::npos);
}

TEST_F(SpawnErrorTest, MissingInterpreterIsNotFound) {
    const fs::path file = m_temp.path() / "script";
    std::ofstream(file) << "#!/nonexistent/interpreter\n";
    fs::permissions(file, fs::perms::owner_all);
    const Error error = spawn_error(file);
    EXPECT_EQ(error.kind, ErrorKind::not_found);
    EXPECT_NE(error.hint.find("#!"), std::string::npos);
}

TEST_F(SpawnErrorTest, DirectoryIsNotExecutable) {
    const Error error = spawn_error(m_temp.path());
    EXPECT_EQ(error.kind, ErrorKind::not_executable);
}

} // namespace
} // namespace withgpu::run
