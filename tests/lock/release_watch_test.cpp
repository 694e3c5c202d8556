#include "lock/claim.hpp"
#include "lock/queue_files.hpp"
#include "lock/release_watch.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <poll.h>

namespace withgpu::lock {
namespace {

bool readable_within(int fd, std::chrono::milliseconds timeout) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

class ReleaseWatchTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto opened = LockDir::open(path().string(), true);
        ASSERT_TRUE(opened.has_value()) << opened.error().message;
        m_dir.emplace(std::move(*opened));
    }
    [[nodiscard]] std::filesystem::path path() const { return m_tmp.path() / "locks"; }
    void create(const std::string& name) {
        const Fd fd(::open((path() / name).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
        ASSERT_TRUE(fd) << name;
    }
    testing::TempDir m_tmp;
    std::optional<LockDir> m_dir;
};

TEST_F(ReleaseWatchTest, WakesOnAClaimEndingAndTimesOutOtherwise) {
    auto watch = ReleaseWatch::open(*m_dir);
    ASSERT_FALSE(watch.degraded());
    EXPECT_FALSE(readable_within(watch.fd(), std::chrono::milliseconds(50))); // nothing happened
    {
        auto claim = Claim::try_acquire(*m_dir, {"GPU-aaaa"});
        ASSERT_TRUE(claim.has_value() && claim->has_value());
    } // released here: the last descriptor of the lock file closes
    ASSERT_TRUE(readable_within(watch.fd(), std::chrono::seconds(10)));
    EXPECT_TRUE(watch.take_events());
    EXPECT_FALSE(readable_within(watch.fd(), std::chrono::milliseconds(0))); // all read
    // The decision lock's own file is not a release.
    {
        auto decision = DecisionLock::acquire(*m_dir, DecisionLock::Mode::exclusive);
        ASSERT_TRUE(decision.has_value());
    }
    ASSERT_TRUE(readable_within(watch.fd(), std::chrono::seconds(10))); // an event ...
    EXPECT_FALSE(watch.take_events());                                  // ... but no news
}

TEST_F(ReleaseWatchTest, ATicketJoiningIsNoNewsAndATicketLeavingIs) {
    auto watch = ReleaseWatch::open(*m_dir);
    ASSERT_FALSE(watch.degraded());
    auto ticket = QueueTicket::enter(*m_dir, [](std::uint64_t) { return std::string("t\n"); });
    ASSERT_TRUE(ticket.has_value());
    ASSERT_TRUE(readable_within(watch.fd(), std::chrono::seconds(10)));
    EXPECT_FALSE(watch.take_events()); // someone behind us: nothing freed
    ticket->leave();
    ASSERT_TRUE(readable_within(watch.fd(), std::chrono::seconds(10)));
    EXPECT_TRUE(watch.take_events());
}

TEST_F(ReleaseWatchTest, SaysWhenAClaimFileMayHaveAppeared) {
    auto watch = ReleaseWatch::open(*m_dir);
    ASSERT_FALSE(watch.degraded());
    EXPECT_TRUE(watch.take_names_added()); // nothing was listed yet
    EXPECT_FALSE(watch.take_names_added());

    auto ticket = QueueTicket::enter(*m_dir, [](std::uint64_t) { return std::string("t\n"); });
    ASSERT_TRUE(ticket.has_value());
    create("notes.txt");
    EXPECT_FALSE(watch.take_names_added()); // neither is a claim file

    create("gpu-aaaa.0.lock"); // created
    EXPECT_TRUE(watch.take_names_added());
    EXPECT_FALSE(watch.take_names_added()); // told once

    create("elsewhere");
    ASSERT_EQ(std::rename((path() / "elsewhere").c_str(), (path() / "gpu-bbbb.0.lock").c_str()),
              0); // renamed in
    EXPECT_TRUE(watch.take_names_added());

    ASSERT_EQ(::link((path() / "gpu-bbbb.0.lock").c_str(), (path() / "gpu-cccc.0.lock").c_str()),
              0); // linked in
    EXPECT_TRUE(watch.take_names_added());

    std::filesystem::remove(path() / "gpu-aaaa.0.lock"); // gone: a listing would miss nothing
    EXPECT_FALSE(watch.take_names_added());
}

// Events lost to a full queue could be anything: a release, a claim file appearing.
TEST_F(ReleaseWatchTest, AnOverflowIsNewsAndMakesTheListingOld) {
    std::ifstream limit_file("/proc/sys/fs/inotify/max_queued_events");
    long limit = 0;
    if (!(limit_file >> limit) || limit <= 0 || limit > 1000000) {
        GTEST_SKIP() << "the inotify queue limit cannot be read, or is too large to fill";
    }
    auto watch = ReleaseWatch::open(*m_dir);
    ASSERT_FALSE(watch.degraded());
    EXPECT_TRUE(watch.take_names_added());
    // Writes closed on two files in turn: events the kernel cannot merge, none of them news.
    for (long i = 0; i <= limit; ++i) {
        create(i % 2 == 0 ? "even" : "odd");
    }
    EXPECT_TRUE(watch.take_events());
    EXPECT_TRUE(watch.take_names_added());
    EXPECT_FALSE(watch.take_names_added()); // the next listing is complete again
}

} // namespace
} // namespace withgpu::lock
