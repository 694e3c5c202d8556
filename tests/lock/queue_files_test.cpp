#include "lock/queue_files.hpp"
#include "process.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <poll.h>
#include <set>
#include <sys/file.h>
#include <sys/stat.h>

namespace withgpu::lock {
namespace {

bool readable_within(int fd, std::chrono::milliseconds timeout) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

using withgpu::testing::exit_code_of;
using withgpu::testing::fork_process;
using withgpu::testing::TempDir;

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
    const pid_t child = fork_process([&] {
        auto t = QueueTicket::enter(*m_dir, [](std::uint64_t) { return std::string("x\n"); });
        (void)!::write(ready[1], "r", 1);
        ::pause();
        return 0;
    });
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    EXPECT_EQ(read_queue(*m_dir)->size(), 1U); // alive: locked
    ::kill(child, SIGKILL);
    exit_code_of(child);
    EXPECT_TRUE(on_disk(1));                  // SIGKILL left the file ...
    EXPECT_TRUE(read_queue(*m_dir)->empty()); // ... but it is recognised as dead ...
    EXPECT_FALSE(on_disk(1));                 // ... and removed
    ::close(ready[0]);
    ::close(ready[1]);
}

TEST_F(QueueFilesTest, WaitForTicketReturnsWhenItsWaiterLeaves) {
    auto gone = wait_for_ticket(*m_dir, 99);
    ASSERT_TRUE(gone.has_value());
    EXPECT_FALSE(gone->has_value()); // a ticket that does not exist has left

    int ready[2]; // child -> parent
    int go[2];    // parent -> child
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(go), 0);
    const pid_t child = fork_process([&] {
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
    auto pending = wait_for_ticket(*m_dir, 1);
    ASSERT_TRUE(pending.has_value() && pending->has_value()) << "the child holds it";
    EXPECT_FALSE((*pending)->tells_when_stopped); // entered without the awake lock
    EXPECT_FALSE(readable_within((*pending)->lock.ready_fd(), std::chrono::milliseconds(0)));
    (void)!::write(go[1], "g", 1);
    ASSERT_TRUE(readable_within((*pending)->lock.ready_fd(), std::chrono::seconds(30)));
    EXPECT_EQ((*pending)->lock.granted(), true); // the child has left
    EXPECT_EQ(exit_code_of(child), 0);
    for (int fd : {ready[0], ready[1], go[0], go[1]}) {
        ::close(fd);
    }
}

// A waiter that tells when it stops (the CLI on Ctrl-Z) wakes whoever waits behind it at once,
// and stays in line while it is stopped (queue_files.hpp, the awake lock).
TEST_F(QueueFilesTest, AWaiterThatTellsWakesTheOneBehindWhenItPausesAndKeepsItsPlace) {
    auto ticket = QueueTicket::enter(
        *m_dir, [](std::uint64_t) { return std::string("x\n"); }, true);
    ASSERT_TRUE(ticket.has_value());
    auto behind = wait_for_ticket(*m_dir, ticket->seq());
    ASSERT_TRUE(behind.has_value() && behind->has_value());
    EXPECT_TRUE((*behind)->tells_when_stopped);
    EXPECT_FALSE(readable_within((*behind)->lock.ready_fd(), std::chrono::milliseconds(50)));

    ticket->pause();
    ASSERT_TRUE(readable_within((*behind)->lock.ready_fd(), std::chrono::seconds(30)));
    EXPECT_EQ((*behind)->lock.granted(), true);
    EXPECT_EQ(read_tickets(*m_dir, {ticket->seq()}).size(), 1U) << "paused is not gone";

    // Taking the awake lock back never waits: while the one behind still holds its shared
    // lock, the ticket is one that cannot tell ...
    ticket->resume();
    auto meanwhile = wait_for_ticket(*m_dir, ticket->seq());
    ASSERT_TRUE(meanwhile.has_value() && meanwhile->has_value());
    EXPECT_FALSE((*meanwhile)->tells_when_stopped);
    meanwhile->reset();
    behind->reset(); // ... until it lets go (its helper thread closes the descriptor a moment
                     // later); a later resume() then takes the lock back
    Result<std::optional<TicketWait>> again = std::optional<TicketWait>();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    do {
        ticket->resume();
        again = wait_for_ticket(*m_dir, ticket->seq());
        ASSERT_TRUE(again.has_value() && again->has_value());
    } while (!(*again)->tells_when_stopped && std::chrono::steady_clock::now() < deadline);
    EXPECT_TRUE((*again)->tells_when_stopped);
    EXPECT_FALSE(readable_within((*again)->lock.ready_fd(), std::chrono::milliseconds(50)));

    ticket->leave();
    ASSERT_TRUE(readable_within((*again)->lock.ready_fd(), std::chrono::seconds(30)));
    auto left = wait_for_ticket(*m_dir, ticket->seq());
    ASSERT_TRUE(left.has_value());
    EXPECT_FALSE(left->has_value());
}

TEST(NextTicketSeq, IsOneMoreThanTheLatestLiveTicketSkippingNamesThatExist) {
    EXPECT_EQ(next_ticket_seq({}, {}), 1U);
    EXPECT_EQ(next_ticket_seq({3, 7}, {3, 7}), 8U);
    EXPECT_EQ(next_ticket_seq({3, 7}, {9, 3, 8, 7, 2}), 10U); // 8 and 9: dead, not removable
    EXPECT_EQ(next_ticket_seq({}, {1, 2, 40}), 3U);           // dead ones do not push it up
    EXPECT_EQ(next_ticket_seq({max_ticket_seq - 1}, {}), max_ticket_seq);
    EXPECT_EQ(next_ticket_seq({max_ticket_seq}, {}), std::nullopt); // never wraps
}

void touch(const std::filesystem::path& path) {
    const Fd fd(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd) << path;
}

// Issue 12, item 6: a planted ticket with the largest uint64_t must neither make the next
// waiter's number wrap to 0 (jumping the queue) nor make the one after fail.
TEST_F(QueueFilesTest, AnAbsurdTicketNumberCannotForceTheSequence) {
    const auto dir_path = m_tmp.path() / "locks";
    touch(dir_path / "queue-18446744073709551615.ticket");
    touch(dir_path / ("queue-" + std::to_string(max_ticket_seq + 1) + ".ticket"));
    auto a = enter("a\n");
    auto b = enter("b\n");
    EXPECT_EQ(a.seq(), 1U);
    EXPECT_EQ(b.seq(), 2U);
    auto queue = read_queue(*m_dir);
    ASSERT_TRUE(queue.has_value());
    ASSERT_EQ(queue->size(), 2U);
    EXPECT_EQ((*queue)[0].text, "a\n");
}

// Issue 12, item 7: names without the 20-digit padding are not tickets, so nobody waits
// behind one (the waiter used to open the padded name, find nothing, and spin).
TEST_F(QueueFilesTest, OddlyNamedTicketsAreNoTickets) {
    const auto dir_path = m_tmp.path() / "locks";
    for (const char* name : {"queue-5.ticket",
                             "queue-+0000000000000000007.ticket",
                             "queue-00000000000000000000.ticket",
                             "queue-.ticket"}) {
        touch(dir_path / name);
    }
    const Fd held(::open((dir_path / "queue-5.ticket").c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(held);
    const pid_t holder = fork_process([&] { // another process holds it, as a waiter would
        if (::flock(held.get(), LOCK_EX) != 0) {
            return 1;
        }
        ::pause();
        return 0;
    });
    auto queue = read_queue(*m_dir);
    ASSERT_TRUE(queue.has_value());
    EXPECT_TRUE(queue->empty());
    EXPECT_EQ(enter("a\n").seq(), 1U);
    ::kill(holder, SIGKILL);
    exit_code_of(holder);
}

// Issue 12, item 5: a ticket name taken by a symlink, a FIFO, a directory or an unreadable
// file is skipped with a note naming it; the queue keeps working.
TEST_F(QueueFilesTest, PlantedTicketFilesAreSkippedWithANote) {
    const auto dir_path = m_tmp.path() / "locks";
    std::filesystem::create_symlink("/etc/passwd", dir_path / ticket_file_name(2));
    ASSERT_EQ(::mkfifo((dir_path / ticket_file_name(3)).c_str(), 0644), 0);
    std::filesystem::create_directory(dir_path / ticket_file_name(4));
    std::vector<std::string> notes;
    auto queue = read_queue(*m_dir, &notes); // never blocks on the FIFO
    ASSERT_TRUE(queue.has_value()) << queue.error().message;
    EXPECT_TRUE(queue->empty());
    ASSERT_EQ(notes.size(), 3U);
    for (std::uint64_t seq = 2; seq <= 4; ++seq) {
        EXPECT_NE(notes[seq - 2].find(ticket_file_name(seq)), std::string::npos) << notes[seq - 2];
    }
    auto a = enter("a\n");
    EXPECT_EQ(a.seq(), 1U);
    auto b = enter("b\n");
    EXPECT_EQ(b.seq(), 5U);                 // names that exist are skipped
    auto gone = wait_for_ticket(*m_dir, 3); // not a ticket: nothing to wait for
    ASSERT_TRUE(gone.has_value());
    EXPECT_FALSE(gone->has_value());
    EXPECT_EQ(read_queue(*m_dir)->size(), 2U);
}

TEST_F(QueueFilesTest, ReadingBeforeANumberReadsOnlyEarlierTickets) {
    auto a = enter("a\n");
    auto b = enter("b\n");
    auto c = enter("c\n");
    const auto dir_path = m_tmp.path() / "locks";
    ASSERT_EQ(::mkfifo((dir_path / ticket_file_name(9)).c_str(), 0644), 0); // after ours
    std::vector<std::string> notes;
    auto before_c = read_queue(*m_dir, &notes, c.seq());
    ASSERT_TRUE(before_c.has_value()) << before_c.error().message;
    ASSERT_EQ(before_c->size(), 2U);
    EXPECT_EQ((*before_c)[0].text, "a\n");
    EXPECT_EQ((*before_c)[1].text, "b\n");
    EXPECT_TRUE(notes.empty()) << "a file after ours is never opened: " << notes.front();
    EXPECT_TRUE(read_queue(*m_dir, nullptr, a.seq())->empty()); // the head reads none
}

// A waiter in line reads the tickets it knows may be ahead, by name: whatever else is in the
// directory, however many, is not even listed.
TEST_F(QueueFilesTest, ReadingByNumberReadsOnlyThoseLiveInArrivalOrder) {
    auto a = enter("a\n");
    auto b = enter("b\n");
    auto c = enter("c\n");
    b.leave();
    const auto dir_path = m_tmp.path() / "locks";
    ASSERT_EQ(::mkfifo((dir_path / ticket_file_name(9)).c_str(), 0644), 0);
    std::filesystem::create_symlink("/etc/passwd", dir_path / ticket_file_name(7));
    std::vector<std::string> notes;
    const auto live = read_tickets(*m_dir, {3, 7, 1, 2, 1, 42}, &notes);
    ASSERT_EQ(live.size(), 2U);
    EXPECT_EQ(live[0].seq, 1U);
    EXPECT_EQ(live[0].text, "a\n");
    EXPECT_EQ(live[1].seq, 3U);
    EXPECT_EQ(live[1].text, "c\n");
    ASSERT_EQ(notes.size(), 1U) << "only the symlink that was asked for";
    EXPECT_NE(notes[0].find(ticket_file_name(7)), std::string::npos) << notes[0];
    EXPECT_TRUE(read_tickets(*m_dir, {}).empty());
}

// Launches that gave up waiting for the decision lock (a burst of hundreds) join the queue
// without it: O_EXCL alone must then give each its own number, and none may fail to join.
TEST_F(QueueFilesTest, ManyJoiningAtOnceWithoutTheDecisionLockAllGetTheirOwnNumber) {
    constexpr int joiners = 200;
    int go[2];      // parent -> children: start (one byte each)
    int done[2];    // children -> parent: the seq each got (0: failed to join)
    int release[2]; // parent -> children: leave (closed)
    ASSERT_EQ(::pipe(go), 0);
    ASSERT_EQ(::pipe(done), 0);
    ASSERT_EQ(::pipe(release), 0);
    std::vector<pid_t> children;
    children.reserve(joiners);
    for (int i = 0; i < joiners; ++i) {
        children.push_back(fork_process([&] {
            ::close(release[1]);
            char c = 0;
            (void)!::read(go[0], &c, 1); // all start together
            auto t = QueueTicket::enter(*m_dir, [](std::uint64_t) { return std::string("x\n"); });
            const std::uint64_t seq = t ? t->seq() : 0;
            if (!t) {
                std::fprintf(stderr, "%s\n", t.error().message.c_str());
            }
            (void)!::write(done[1], &seq, sizeof seq);
            (void)!::read(release[0], &c, 1); // EOF once the parent has counted
            return 0;
        }));
    }
    ::close(release[0]);
    const std::string all(joiners, 'g');
    ASSERT_EQ(::write(go[1], all.data(), all.size()), joiners);
    std::set<std::uint64_t> seqs;
    for (int i = 0; i < joiners; ++i) {
        std::uint64_t seq = 0;
        ASSERT_EQ(::read(done[0], &seq, sizeof seq), static_cast<ssize_t>(sizeof seq));
        EXPECT_NE(seq, 0U) << "a joiner failed to join";
        seqs.insert(seq);
    }
    EXPECT_EQ(seqs.size(), static_cast<std::size_t>(joiners)) << "every joiner, each its own";
    EXPECT_EQ(read_queue(*m_dir)->size(), static_cast<std::size_t>(joiners));
    ::close(release[1]);
    for (const pid_t child : children) {
        EXPECT_EQ(exit_code_of(child), 0);
    }
    for (int fd : {go[0], go[1], done[0], done[1]}) {
        ::close(fd);
    }
}

TEST_F(QueueFilesTest, ADeadTicketThatCannotBeRemovedIsSkipped) {
    WITH_GPU_REQUIRE_ROOT("to act as another user");
    const auto dir_path = m_tmp.path() / "locks";
    ASSERT_EQ(::chmod(m_tmp.path().c_str(), 0755), 0);
    touch(dir_path / ticket_file_name(1)); // root's, dead: another user may not remove it
    const int code = withgpu::testing::run_in_child([&] {
        if (!withgpu::testing::become_nobody()) {
            return 10;
        }
        auto dir = LockDir::open(dir_path.string(), false);
        if (!dir) {
            return 11;
        }
        auto t = QueueTicket::enter(*dir, [](std::uint64_t) { return std::string("x\n"); });
        if (!t) {
            return withgpu::testing::report_error(t.error());
        }
        return t->seq() == 2 ? 0 : 12;
    });
    EXPECT_EQ(code, 0);
}

} // namespace
} // namespace withgpu::lock
