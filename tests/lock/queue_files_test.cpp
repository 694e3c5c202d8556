#include "lock/claim.hpp"
#include "lock/queue_files.hpp"
#include "process.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>

namespace withgpu::lock {
namespace {

using withgpu::testing::start_child;
using withgpu::testing::TempDir;
using withgpu::testing::wait_for;

class QueueFilesTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto opened = LockDir::open((m_tmp.path() / "locks").string(), true);
        ASSERT_TRUE(opened.has_value()) << opened.error().message;
        m_dir.emplace(std::move(*opened));
    }
    QueueTicket enter(const std::string& text) {
        auto t = QueueTicket::enter(*m_dir, [&](std::uint64_t) { return text; });
        EXPECT_TRUE(t.has_value());
        return std::move(*t);
    }
    bool on_disk(std::uint64_t seq) {
        return std::filesystem::exists(m_tmp.path() / "locks" / ticket_file_name(seq));
    }
    TempDir m_tmp;
    std::optional<LockDir> m_dir;
};

TEST_F(QueueFilesTest, TicketsAreNumberedInArrivalOrderAndRead) {
    auto a = enter("a\n");
    auto b = enter("b\n");
    EXPECT_EQ(a.seq(), 1U);
    EXPECT_EQ(b.seq(), 2U);
    auto queue = read_queue(*m_dir);
    ASSERT_TRUE(queue.has_value());
    ASSERT_EQ(queue->size(), 2U);
    EXPECT_EQ((*queue)[0].text, "a\n");
    EXPECT_EQ((*queue)[1].seq, 2U);
}

TEST_F(QueueFilesTest, LeavingRemovesTheFile) {
    auto a = enter("a\n");
    EXPECT_TRUE(on_disk(1));
    a.leave();
    EXPECT_FALSE(on_disk(1));
    a.leave(); // idempotent
    EXPECT_TRUE(read_queue(*m_dir)->empty());
}

TEST_F(QueueFilesTest, ADeadWaitersTicketIsRemovedByTheNextReader) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = start_child([&] {
        auto t = QueueTicket::enter(*m_dir, [](std::uint64_t) { return std::string("x\n"); });
        (void)!::write(ready[1], "r", 1);
        ::pause();
        return 0;
    });
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    EXPECT_EQ(read_queue(*m_dir)->size(), 1U); // alive: locked
    ::kill(child, SIGKILL);
    wait_for(child);
    EXPECT_TRUE(on_disk(1));                  // SIGKILL left the file ...
    EXPECT_TRUE(read_queue(*m_dir)->empty()); // ... but it is recognised as dead ...
    EXPECT_FALSE(on_disk(1));                 // ... and removed
    ::close(ready[0]);
    ::close(ready[1]);
}

TEST_F(QueueFilesTest, WaitForTicketReturnsWhenItsWaiterLeaves) {
    auto gone = wait_for_ticket(*m_dir, 99);
    ASSERT_TRUE(gone.has_value());
    EXPECT_TRUE(*gone); // a ticket that does not exist has left

    int ready[2]; // child -> parent
    int go[2];    // parent -> child
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(go), 0);
    const pid_t child = start_child([&] {
        auto t = QueueTicket::enter(*m_dir, [](std::uint64_t) { return std::string("x\n"); });
        (void)!::write(ready[1], "r", 1);
        char c = 0;
        (void)!::read(go[0], &c, 1); // hold the ticket until told to leave
        return 0;                    // leaves the queue on exit
    });
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    auto alive = read_queue(*m_dir);
    ASSERT_TRUE(alive.has_value());
    EXPECT_EQ(alive->size(), 1U);
    (void)!::write(go[1], "g", 1);
    auto left = wait_for_ticket(*m_dir, 1); // blocks until the child has left
    ASSERT_TRUE(left.has_value());
    EXPECT_TRUE(*left);
    EXPECT_EQ(wait_for(child), 0);
    for (int fd : {ready[0], ready[1], go[0], go[1]}) {
        ::close(fd);
    }
}

TEST_F(QueueFilesTest, ReleaseWatchWakesOnAClaimEndingAndTimesOutOtherwise) {
    auto watch = ReleaseWatch::open(*m_dir);
    ASSERT_FALSE(watch.degraded());
    EXPECT_FALSE(watch.wait(std::chrono::milliseconds(50))); // nothing happened
    {
        auto claim = Claim::try_acquire(*m_dir, {"GPU-aaaa"});
        ASSERT_TRUE(claim.has_value() && claim->has_value());
    } // released here: the last descriptor of the lock file closes
    EXPECT_TRUE(watch.wait(std::chrono::seconds(10)));
    // The decision lock's own file is not a release.
    {
        auto decision = DecisionLock::acquire(*m_dir, DecisionLock::Mode::exclusive);
        ASSERT_TRUE(decision.has_value());
    }
    EXPECT_FALSE(watch.wait(std::chrono::milliseconds(50)));
}

} // namespace
} // namespace withgpu::lock
