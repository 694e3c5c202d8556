#include "run/command.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace withgpu::run {
namespace {

namespace fs = std::filesystem;
using withgpu::testing::TempDir;

void make_file(const fs::path& path, fs::perms perms) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << "#!/bin/sh\nexit 0\n";
    fs::permissions(path, perms);
}

void make_program(const fs::path& path) {
    make_file(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
}

void make_plain_file(const fs::path& path) {
    make_file(path, fs::perms::owner_read | fs::perms::owner_write);
}

// Runs the test inside a directory and goes back afterwards.
class CurrentDirectory {
  public:
    explicit CurrentDirectory(const fs::path& path) : m_previous(fs::current_path()) {
        fs::current_path(path);
    }
    CurrentDirectory(const CurrentDirectory&) = delete;
    CurrentDirectory& operator=(const CurrentDirectory&) = delete;
    ~CurrentDirectory() { fs::current_path(m_previous); }

  private:
    fs::path m_previous;
};

class ResolveCommandTest : public ::testing::Test {
  protected:
    fs::path dir(const std::string& name) const { return m_temp.path() / name; }

    TempDir m_temp;
};

TEST_F(ResolveCommandTest, FirstExecutableInPathOrderWins) {
    make_program(dir("a") / "tool");
    make_program(dir("b") / "tool");
    const std::string path =
        dir("empty").string() + ":" + dir("a").string() + ":" + dir("b").string();
    const auto resolved = resolve_command({"tool", "--flag", "x"}, path);
    ASSERT_TRUE(resolved) << resolved.error().message;
    EXPECT_EQ(resolved->path, (dir("a") / "tool").string());
    EXPECT_EQ(resolved->argv, (std::vector<std::string>{"tool", "--flag", "x"}));

    const auto reversed = resolve_command({"tool"}, dir("b").string() + ":" + dir("a").string());
    ASSERT_TRUE(reversed);
    EXPECT_EQ(reversed->path, (dir("b") / "tool").string());
}

TEST_F(ResolveCommandTest, SkipsCandidatesThatCannotRun) {
    make_plain_file(dir("a") / "tool");
    fs::create_directories(dir("b") / "tool");
    make_program(dir("c") / "tool");
    const auto resolved = resolve_command(
        {"tool"}, dir("a").string() + ":" + dir("b").string() + ":" + dir("c").string());
    ASSERT_TRUE(resolved) << resolved.error().message;
    EXPECT_EQ(resolved->path, (dir("c") / "tool").string());
}

TEST_F(ResolveCommandTest, EmptyPathEntriesMeanTheCurrentDirectory) {
    make_program(dir("cwd") / "tool");
    fs::create_directories(dir("other"));
    const CurrentDirectory cwd(dir("cwd"));
    const std::string other = dir("other").string();
    for (const std::string& path :
         {std::string(),
          ":" + other,
          other + ":",
          other + "::" + other}) { // NOLINT(performance-inefficient-string-concatenation)
        const auto resolved = resolve_command({"tool"}, path);
        ASSERT_TRUE(resolved) << "PATH='" << path << "': " << resolved.error().message;
        EXPECT_EQ(resolved->path, "./tool") << "PATH='" << path << "'";
    }
    // Without an empty entry, the current directory is not searched.
    const auto not_searched = resolve_command({"tool"}, other);
    ASSERT_FALSE(not_searched);
    EXPECT_EQ(not_searched.error().kind, ErrorKind::not_found);
}

TEST_F(ResolveCommandTest, UnsetPathUsesTheDefaultSearchPath) {
    std::string expected;
    for (const char* candidate : {"/usr/local/bin/sh", "/usr/bin/sh", "/bin/sh"}) {
        if (::access(candidate, X_OK) == 0) {
            expected = candidate;
            break;
        }
    }
    ASSERT_FALSE(expected.empty()) << "no sh in the default search path";
    const auto resolved = resolve_command({"sh"}, std::nullopt);
    ASSERT_TRUE(resolved) << resolved.error().message;
    EXPECT_EQ(resolved->path, expected);

    // The default path is used only when PATH is unset, not when it is set to something else.
    const auto empty_dir_only = resolve_command({"sh"}, dir("nothing-here").string());
    EXPECT_FALSE(empty_dir_only);
}

TEST_F(ResolveCommandTest, NamesWithSlashAreUsedAsTheyAre) {
    make_program(dir("a") / "tool");
    make_program(dir("sub") / "tool");
    const std::string absolute = (dir("a") / "tool").string();
    const auto resolved = resolve_command({absolute}, dir("sub").string());
    ASSERT_TRUE(resolved);
    EXPECT_EQ(resolved->path, absolute);

    const CurrentDirectory cwd(m_temp.path());
    const auto relative = resolve_command({"sub/tool"}, dir("a").string());
    ASSERT_TRUE(relative);
    EXPECT_EQ(relative->path, "sub/tool");

    // A name with '/' is never looked up in PATH, even if PATH has a program of that name.
    const auto missing = resolve_command({"./tool"}, dir("a").string());
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().kind, ErrorKind::not_found);
    EXPECT_EQ(missing.error().message, "command not found: ./tool");
    EXPECT_FALSE(missing.error().hint.empty());
}

TEST_F(ResolveCommandTest, NotFound) {
    fs::create_directories(dir("a"));
    const auto resolved =
        resolve_command({"no-such-tool", "arg"}, dir("a").string() + ":/nonexistent");
    ASSERT_FALSE(resolved);
    EXPECT_EQ(resolved.error().kind, ErrorKind::not_found);
    EXPECT_EQ(resolved.error().message, "command not found: no-such-tool");
    EXPECT_NE(resolved.error().hint.find("PATH"), std::string::npos);
}

TEST_F(ResolveCommandTest, FileWithoutExecutePermission) {
    make_plain_file(dir("a") / "tool");
    const auto searched = resolve_command({"tool"}, dir("a").string());
    ASSERT_FALSE(searched);
    EXPECT_EQ(searched.error().kind, ErrorKind::not_executable);
    EXPECT_EQ(searched.error().message,
              "cannot execute " + (dir("a") / "tool").string() + ": Permission denied");
    EXPECT_NE(searched.error().hint.find("chmod +x"), std::string::npos);

    const CurrentDirectory cwd(dir("a"));
    const auto direct = resolve_command({"./tool"}, std::nullopt);
    ASSERT_FALSE(direct);
    EXPECT_EQ(direct.error().kind, ErrorKind::not_executable);
    EXPECT_EQ(direct.error().message, "cannot execute ./tool: Permission denied");
}

TEST_F(ResolveCommandTest, Directory) {
    fs::create_directories(dir("a") / "tool");
    const auto searched = resolve_command({"tool"}, dir("a").string());
    ASSERT_FALSE(searched);
    EXPECT_EQ(searched.error().kind, ErrorKind::not_executable);
    EXPECT_EQ(searched.error().message,
              "cannot execute " + (dir("a") / "tool").string() + ": Is a directory");

    const auto direct = resolve_command({dir("a").string()}, std::nullopt);
    ASSERT_FALSE(direct);
    EXPECT_EQ(direct.error().kind, ErrorKind::not_executable);
    EXPECT_FALSE(direct.error().hint.empty());
}

TEST_F(ResolveCommandTest, FirstCandidateThatCannotRunIsReported) {
    fs::create_directories(dir("a"));
    make_plain_file(dir("b") / "tool");
    make_plain_file(dir("c") / "tool");
    const auto resolved = resolve_command(
        {"tool"}, dir("a").string() + ":" + dir("b").string() + ":" + dir("c").string());
    ASSERT_FALSE(resolved);
    EXPECT_EQ(resolved.error().kind, ErrorKind::not_executable);
    EXPECT_EQ(resolved.error().message,
              "cannot execute " + (dir("b") / "tool").string() + ": Permission denied");
}

TEST_F(ResolveCommandTest, EmptyArgvIsAUsageError) {
    const auto resolved = resolve_command({}, std::nullopt);
    ASSERT_FALSE(resolved);
    EXPECT_EQ(resolved.error().kind, ErrorKind::usage);
    EXPECT_FALSE(resolved.error().hint.empty());
}

TEST_F(ResolveCommandTest, EmptyNameIsNotFound) {
    const CurrentDirectory cwd(m_temp.path());
    const auto resolved = resolve_command({""}, std::string(":/bin"));
    ASSERT_FALSE(resolved);
    EXPECT_EQ(resolved.error().kind, ErrorKind::not_found);
}

} // namespace
} // namespace withgpu::run
