#include "lock/pending_lock.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <thread>

namespace withgpu::lock {
namespace {

using withgpu::testing::TempDir;

// flock(2) locks belong to open file descriptions: two opens of one file in one process
// conflict as two processes would.
Fd open_file(const TempDir& tmp) {
    return Fd(::open((tmp.path() / "f.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
}

bool lockable_now(const TempDir& tmp) {
    const Fd probe = open_file(tmp);
    return ::flock(probe.get(), LOCK_EX | LOCK_NB) == 0;
}

bool readable_within(int fd, std::chrono::milliseconds timeout) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

TEST(PendingLock, AFreeLockIsGrantedAtOnce) {
    TempDir tmp;
    auto pending = PendingLock::start(open_file(tmp), LOCK_EX);
    ASSERT_TRUE(pending) << pending.error().message;
    EXPECT_EQ(pending->ready_fd(), -1);
    EXPECT_EQ(pending->granted(), true);
    const Fd held = pending->take();
    EXPECT_TRUE(held.valid());
    EXPECT_FALSE(lockable_now(tmp));
}

TEST(PendingLock, AHeldLockIsGrantedWhenItsHolderLetsGo) {
    TempDir tmp;
    Fd holder = open_file(tmp);
    ASSERT_EQ(::flock(holder.get(), LOCK_EX), 0);
    auto pending = PendingLock::start(open_file(tmp), LOCK_SH);
    ASSERT_TRUE(pending) << pending.error().message;
    ASSERT_GE(pending->ready_fd(), 0);
    EXPECT_EQ(pending->granted(), false);
    EXPECT_FALSE(readable_within(pending->ready_fd(), std::chrono::milliseconds(0)));

    holder.reset();
    ASSERT_TRUE(readable_within(pending->ready_fd(), std::chrono::seconds(30)));
    EXPECT_EQ(pending->granted(), true);
    Fd shared = pending->take();
    EXPECT_FALSE(lockable_now(tmp)); // held shared: an exclusive lock must wait
    shared.reset();
    EXPECT_TRUE(lockable_now(tmp));
}

TEST(PendingLock, AnAbandonedWaitGivesTheLockBackOnceItGetsIt) {
    TempDir tmp;
    Fd holder = open_file(tmp);
    ASSERT_EQ(::flock(holder.get(), LOCK_EX), 0);
    {
        auto pending = PendingLock::start(open_file(tmp), LOCK_EX);
        ASSERT_TRUE(pending);
        EXPECT_EQ(pending->granted(), false);
    } // abandoned while the lock is held elsewhere
    holder.reset();
    // The helper gets the lock, then closes its descriptor: the lock is free again.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    bool free = false;
    while (!(free = lockable_now(tmp)) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
    }
    EXPECT_TRUE(free) << "an abandoned wait kept the lock";
}

} // namespace
} // namespace withgpu::lock
