#include "core/look.hpp"
#include "lock/queue_files.hpp"
#include "os/clock.hpp"
#include "os/fd.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace withgpu::core {
namespace {

using Outcome = selection::Decision::Outcome;

gpu::MachineSnapshot one_idle_gpu() {
    gpu::GpuSnapshot g;
    g.index = 0;
    g.uuid = "GPU-00000000-1111-2222-3333-444444444444";
    g.name = "NVIDIA H100 80GB HBM3";
    g.memory_total_bytes = std::uint64_t{80} << 30;
    g.memory_used_bytes = 0;
    g.memory_free_bytes = g.memory_total_bytes;
    g.processes.emplace();
    gpu::MachineSnapshot machine;
    machine.gpus.push_back(g);
    return machine;
}

class LookTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto opened = lock::LockDir::open((m_tmp.path() / "locks").string(), true);
        ASSERT_TRUE(opened.has_value()) << opened.error().message;
        m_dir.emplace(std::move(*opened));
    }
    std::string ticket_text(std::uint64_t seq) const {
        queue::Ticket t;
        t.seq = seq;
        t.pid = static_cast<int>(::getpid());
        t.user = "alice";
        t.command = "train.py";
        t.since_unix = now_unix();
        return queue::encode(t);
    }
    lock::QueueTicket enter() {
        auto t =
            lock::QueueTicket::enter(*m_dir, [&](std::uint64_t seq) { return ticket_text(seq); });
        EXPECT_TRUE(t.has_value());
        return std::move(*t);
    }
    queue::Turn look_from(QueuePlace& place) {
        std::vector<std::string> notes;
        lock::ClaimListing claim_files;
        auto turn = look(*m_dir, m_machine, {}, place, claim_files, now_unix(), notes);
        EXPECT_TRUE(turn.has_value()) << turn.error().message;
        EXPECT_TRUE(notes.empty());
        return turn ? std::move(*turn) : queue::Turn{};
    }
    testing::TempDir m_tmp;
    std::optional<lock::LockDir> m_dir;
    gpu::MachineSnapshot m_machine = one_idle_gpu();
};

TEST_F(LookTest, ANewcomerCountsEveryTicket) {
    auto a = enter();
    auto b = enter();
    QueuePlace newcomer;
    const auto turn = look_from(newcomer);
    EXPECT_EQ(turn.position, 3U);
    EXPECT_EQ(turn.wait_behind, b.seq());
    EXPECT_FALSE(newcomer.ahead.has_value()) << "only a waiter in line remembers";
}

// docs/design/queue.md: once a ticket exists, no ticket numbered below it can appear, so a
// waiter's first look learns which tickets may be ahead, and later looks read only those.
TEST_F(LookTest, AWaiterLearnsWhoIsAheadAndThatOnlyShrinks) {
    auto a = enter();
    auto b = enter();
    auto mine = enter();
    QueuePlace place{mine.seq(), std::nullopt};
    auto turn = look_from(place);
    EXPECT_EQ(turn.position, 3U);
    EXPECT_EQ(turn.wait_behind, b.seq());
    ASSERT_TRUE(place.ahead.has_value());
    EXPECT_EQ(*place.ahead, (std::vector<std::uint64_t>{a.seq(), b.seq()}));

    auto later = enter(); // behind us: never read
    b.leave();
    turn = look_from(place);
    EXPECT_EQ(turn.position, 2U);
    EXPECT_EQ(turn.wait_behind, a.seq());
    EXPECT_EQ(*place.ahead, (std::vector<std::uint64_t>{a.seq()}));

    a.leave();
    turn = look_from(place);
    EXPECT_EQ(turn.position, 1U);
    EXPECT_EQ(turn.decision.outcome, Outcome::chosen);
    EXPECT_TRUE(place.ahead->empty());
}

// The head reads no ticket at all: a live ticket planted with a lower number after the head
// learnt that none is ahead (outside the protocol: with-gpu never numbers one so) is not seen,
// while a newcomer does see it, so it is a ticket that would count.
TEST_F(LookTest, TheHeadReadsNoTicket) {
    auto mine = enter();
    auto later = enter();
    QueuePlace place{later.seq(), std::nullopt};
    mine.leave();
    EXPECT_EQ(look_from(place).position, 1U);
    ASSERT_TRUE(place.ahead.has_value());
    EXPECT_TRUE(place.ahead->empty());

    const std::string name = lock::ticket_file_name(1);
    Fd planted(::openat(m_dir->fd(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    ASSERT_TRUE(planted.valid());
    ASSERT_EQ(::flock(planted.get(), LOCK_EX), 0);
    const std::string text = ticket_text(1);
    ASSERT_EQ(::write(planted.get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));

    QueuePlace newcomer;
    EXPECT_EQ(look_from(newcomer).position, 3U) << "the planted ticket is live";
    const auto turn = look_from(place);
    EXPECT_EQ(turn.position, 1U);
    EXPECT_EQ(turn.decision.outcome, Outcome::chosen);
}

} // namespace
} // namespace withgpu::core
