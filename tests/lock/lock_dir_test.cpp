#include "lock/lock_dir.hpp"
#include "process.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace withgpu::lock {
namespace {

using withgpu::testing::TempDir;
namespace fs = std::filesystem;

mode_t mode_of(const fs::path& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

// Sets the process umask for one test.
class UmaskGuard {
  public:
    explicit UmaskGuard(mode_t mask) : m_old(::umask(mask)) {}
    UmaskGuard(const UmaskGuard&) = delete;
    UmaskGuard& operator=(const UmaskGuard&) = delete;
    ~UmaskGuard() { ::umask(m_old); }

  private:
    mode_t m_old;
};

TEST(LockDir, CreatesMissingDirectorySticky1777DespiteUmask) {
    TempDir tmp;
    const UmaskGuard umask_guard(077);
    const auto path = tmp.path() / "locks";
    auto dir = LockDir::open(path.string(), true);
    ASSERT_TRUE(dir) << dir.error().message;
    EXPECT_EQ(dir->path(), path.string());
    EXPECT_GE(dir->fd(), 0);
    EXPECT_TRUE(fs::is_directory(path));
    EXPECT_EQ(mode_of(path), mode_t{01777});

    // Opening it again (the common case) accepts what was created.
    auto again = LockDir::open(path.string(), true);
    ASSERT_TRUE(again) << again.error().message;
}

TEST(LockDir, MissingDirectoryIsAnErrorWithoutCreate) {
    TempDir tmp;
    const auto path = tmp.path() / "locks";
    auto dir = LockDir::open(path.string(), false);
    ASSERT_FALSE(dir);
    EXPECT_EQ(dir.error().kind, ErrorKind::failed);
    EXPECT_NE(dir.error().message.find(path.string()), std::string::npos);
    EXPECT_FALSE(fs::exists(path));
}

TEST(LockDir, ParentsAreNotCreated) {
    TempDir tmp;
    auto dir = LockDir::open((tmp.path() / "a" / "b").string(), true);
    ASSERT_FALSE(dir);
    EXPECT_EQ(dir.error().kind, ErrorKind::failed);
    EXPECT_FALSE(fs::exists(tmp.path() / "a"));
}

TEST(LockDir, RefusesSymlinkToADirectory) {
    TempDir tmp;
    const auto target = tmp.path() / "real";
    ASSERT_TRUE(LockDir::open(target.string(), true)); // a perfectly fine 1777 directory
    const auto link = tmp.path() / "locks";
    fs::create_directory_symlink(target, link);
    for (const bool create : {false, true}) {
        auto dir = LockDir::open(link.string(), create);
        ASSERT_FALSE(dir);
        EXPECT_EQ(dir.error().kind, ErrorKind::failed);
        EXPECT_NE(dir.error().message.find("symbolic link"), std::string::npos)
            << dir.error().message;
        EXPECT_NE(dir.error().message.find(link.string()), std::string::npos);
        EXPECT_FALSE(dir.error().hint.empty());
    }
}

// Issue 12, item 12: the check must hold whatever the spelling, and for every component.
TEST(LockDir, RefusesSymlinksWhateverTheSpellingAndInEveryComponent) {
    TempDir tmp;
    const auto real = tmp.path() / "real";
    fs::create_directory(real);
    ASSERT_TRUE(LockDir::open((real / "locks").string(), true));
    const auto link = tmp.path() / "link";
    fs::create_directory_symlink(real / "locks", link);
    const auto upper = tmp.path() / "upper";
    fs::create_directory_symlink(real, upper);
    if (testing::running_as_root()) { // a link made by another user, not a trusted one
        ASSERT_EQ(::lchown(upper.c_str(), testing::nobody_uid, testing::nobody_gid), 0);
    }
    for (const std::string& spelling : {link.string() + "/",
                                        link.string() + "//",
                                        link.string() + "/.",
                                        (upper / "locks").string(),
                                        upper.string() + "/./locks/",
                                        upper.string() + "//locks"}) {
        for (const bool create : {false, true}) {
            auto dir = LockDir::open(spelling, create);
            ASSERT_FALSE(dir) << spelling;
            EXPECT_EQ(dir.error().kind, ErrorKind::failed);
            EXPECT_NE(dir.error().message.find("symbolic link"), std::string::npos)
                << dir.error().message;
        }
    }
    // The real directory, however it is spelled, is fine.
    for (const std::string& spelling :
         {(real / "locks").string() + "/", real.string() + "//./locks//"}) {
        auto dir = LockDir::open(spelling, false);
        EXPECT_TRUE(dir) << spelling << ": " << dir.error().message;
    }
}

// A symlink that only root controls (like /var/run -> /run) may lead to the lock directory.
TEST(LockDir, FollowsASymlinkOnlyRootCanChange) {
    WITH_GPU_REQUIRE_ROOT("to make a root-owned symlink in a root-only directory");
    TempDir tmp;
    ASSERT_EQ(::chmod(tmp.path().c_str(), 0755), 0);
    fs::create_directory(tmp.path() / "real");
    fs::create_directory_symlink(tmp.path() / "real", tmp.path() / "run");
    auto dir = LockDir::open((tmp.path() / "run" / "locks").string(), true);
    ASSERT_TRUE(dir) << dir.error().message;
    EXPECT_TRUE(fs::is_directory(tmp.path() / "real" / "locks"));
    // The same link in a directory others may write is not trusted.
    ASSERT_EQ(::chmod(tmp.path().c_str(), 0777), 0);
    EXPECT_FALSE(LockDir::open((tmp.path() / "run" / "locks").string(), true));
}

TEST(LockDir, RefusesDanglingSymlinkInsteadOfCreatingThroughIt) {
    TempDir tmp;
    const auto target = tmp.path() / "elsewhere";
    const auto link = tmp.path() / "locks";
    fs::create_directory_symlink(target, link);
    auto dir = LockDir::open(link.string(), true);
    ASSERT_FALSE(dir);
    EXPECT_FALSE(fs::exists(target));
}

TEST(LockDir, RefusesARegularFile) {
    TempDir tmp;
    const auto path = tmp.path() / "locks";
    {
        const Fd fd(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
        ASSERT_TRUE(fd);
    }
    auto dir = LockDir::open(path.string(), true);
    ASSERT_FALSE(dir);
    EXPECT_NE(dir.error().message.find("not a directory"), std::string::npos)
        << dir.error().message;
}

TEST(LockDir, RefusesOwnWorldWritableDirectoryWithoutStickyBit) {
    TempDir tmp;
    const auto path = tmp.path() / "locks";
    fs::create_directory(path);
    ASSERT_EQ(::chmod(path.c_str(), 0777), 0);
    auto dir = LockDir::open(path.string(), true);
    ASSERT_FALSE(dir);
    EXPECT_EQ(dir.error().kind, ErrorKind::failed);
    EXPECT_NE(dir.error().message.find("not sticky"), std::string::npos) << dir.error().message;
    EXPECT_NE(dir.error().hint.find("chmod 1777 " + path.string()), std::string::npos)
        << dir.error().hint;
    // Not "fixed" behind the user's back: it may be shared on purpose.
    EXPECT_EQ(mode_of(path), mode_t{0777});

    ASSERT_EQ(::chmod(path.c_str(), 0770), 0); // group-writable: same problem
    EXPECT_FALSE(LockDir::open(path.string(), false));

    ASSERT_EQ(::chmod(path.c_str(), 01777), 0);
    auto sticky = LockDir::open(path.string(), false);
    EXPECT_TRUE(sticky) << sticky.error().message;
}

TEST(LockDir, AcceptsPrivateDirectory) {
    TempDir tmp;
    const auto path = tmp.path() / "locks";
    fs::create_directory(path);
    ASSERT_EQ(::chmod(path.c_str(), 0700), 0);
    auto dir = LockDir::open(path.string(), true);
    ASSERT_TRUE(dir) << dir.error().message;
    EXPECT_EQ(mode_of(path), mode_t{0700}); // an existing directory's mode is left alone
}

TEST(LockDir, DirectoryOfAnotherUserMustBeSticky) {
    WITH_GPU_REQUIRE_ROOT("to give a directory to another user");
    TempDir tmp;
    const auto path = tmp.path() / "locks";
    fs::create_directory(path);
    ASSERT_EQ(::chown(path.c_str(), testing::nobody_uid, testing::nobody_gid), 0);

    ASSERT_EQ(::chmod(path.c_str(), 0777), 0);
    auto world = LockDir::open(path.string(), true);
    ASSERT_FALSE(world);
    EXPECT_NE(world.error().message.find("not sticky"), std::string::npos) << world.error().message;
    EXPECT_NE(world.error().hint.find("--lock-dir"), std::string::npos);

    // Only its owner can write, but that owner is neither us nor root.
    ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
    auto owners = LockDir::open(path.string(), true);
    ASSERT_FALSE(owners);
    EXPECT_NE(owners.error().message.find("its owner"), std::string::npos)
        << owners.error().message;

    ASSERT_EQ(::chmod(path.c_str(), 01777), 0);
    auto sticky = LockDir::open(path.string(), true);
    EXPECT_TRUE(sticky) << sticky.error().message;
}

TEST(LockDir, RootOwnedReadOnlyDirectoryIsSafe) {
    WITH_GPU_REQUIRE_ROOT("to create a directory owned by root");
    TempDir tmp;
    ASSERT_EQ(::chmod(tmp.path().c_str(), 0755), 0);
    const auto path = tmp.path() / "locks";
    fs::create_directory(path);
    ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
    // Another user may use it (only root can change it), e.g. for --status.
    const int code = testing::run_in_child([&] {
        if (!testing::become_nobody()) {
            return 10;
        }
        auto dir = LockDir::open(path.string(), false);
        if (!dir) {
            return testing::report_error(dir.error());
        }
        return 0;
    });
    EXPECT_EQ(code, 0);
}

TEST(LockDir, ConcurrentCreatorsAllSucceed) {
    TempDir tmp;
    const auto path = tmp.path() / "locks";
    std::vector<pid_t> children;
    children.reserve(8);
    testing::Pipe start;
    for (int i = 0; i < 8; ++i) {
        children.push_back(testing::fork_process([&] {
            start.write.reset();
            char byte = 0;
            static_cast<void>(::read(start.read.get(), &byte, 1)); // wait for the start
            auto dir = LockDir::open(path.string(), true);
            return dir ? 0 : testing::report_error(dir.error());
        }));
    }
    start.write.reset(); // end of file: everyone starts at once
    for (const pid_t child : children) {
        EXPECT_EQ(testing::exit_code_of(child), 0);
    }
    EXPECT_EQ(mode_of(path), mode_t{01777});
}

TEST(RemoveLockDir, RemovesWithGpuFilesThenTheEmptyDirectory) {
    TempDir tmp;
    const auto path = tmp.path() / "slurm-job-7";
    ASSERT_TRUE(LockDir::open(path.string(), true));
    for (const char* name :
         {"decide.lock", "gpu-GPU-1.0.lock", "queue-00000000000000000001.ticket"}) {
        std::ofstream(path / name) << "x";
    }
    remove_lock_dir(path.string());
    EXPECT_FALSE(fs::exists(path));
}

TEST(RemoveLockDir, LeavesOtherFilesAndFollowsNothing) {
    TempDir tmp;
    const auto outside = tmp.path() / "outside";
    fs::create_directory(outside);
    std::ofstream(outside / "gpu-GPU-1.0.lock") << "not ours to remove";
    const auto path = tmp.path() / "slurm-job-7";
    ASSERT_TRUE(LockDir::open(path.string(), true));
    std::ofstream(path / "decide.lock") << "x";
    std::ofstream(path / "notes.txt") << "someone else's";
    fs::create_directory_symlink(outside, path / "queue-00000000000000000002.ticket");
    remove_lock_dir(path.string());
    EXPECT_FALSE(fs::exists(path / "decide.lock"));
    EXPECT_TRUE(fs::exists(path / "notes.txt")); // so the directory stays too
    EXPECT_FALSE(fs::is_symlink(path / "queue-00000000000000000002.ticket")); // the link went
    EXPECT_TRUE(fs::exists(outside / "gpu-GPU-1.0.lock"));                    // not its target

    // A symlink in place of the directory is refused as a lock directory is.
    const auto link = tmp.path() / "slurm-job-8";
    fs::create_directory_symlink(outside, link);
    remove_lock_dir(link.string());
    EXPECT_TRUE(fs::is_symlink(link));
    EXPECT_TRUE(fs::exists(outside / "gpu-GPU-1.0.lock"));
}

} // namespace
} // namespace withgpu::lock
