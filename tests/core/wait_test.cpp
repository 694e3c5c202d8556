#include "core/wait.hpp"
#include "os/fd.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <pthread.h>
#include <thread>
#include <unistd.h>

namespace withgpu::core {
namespace {

using namespace std::chrono_literals;

struct Pipe {
    Fd read;
    Fd write;
    Pipe() {
        int fds[2];
        EXPECT_EQ(::pipe(fds), 0);
        read = Fd(fds[0]);
        write = Fd(fds[1]);
    }
    void poke() const { EXPECT_EQ(::write(write.get(), "x", 1), 1); }
};

std::chrono::steady_clock::time_point in(std::chrono::milliseconds d) {
    return std::chrono::steady_clock::now() + d;
}

TEST(Wait, EndsWhenADescriptorIsReadable) {
    Pipe pipe;
    pipe.poke();
    const int fds[] = {-1, pipe.read.get()};
    EXPECT_EQ(wait_for(fds, in(60s), {}), Woken::ready);
}

TEST(Wait, EndsAtTheDeadline) {
    Pipe pipe;
    const int fds[] = {pipe.read.get()};
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(wait_for(fds, in(20ms), {}), Woken::timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms); // never early
    EXPECT_EQ(wait_for(fds, in(-5ms), {}), Woken::timeout);    // a deadline that has passed
}

TEST(Wait, TheCancelDescriptorWinsOverEverythingElse) {
    Pipe data;
    Pipe cancel;
    data.poke();
    cancel.poke();
    const int fds[] = {data.read.get()};
    Cancellation c;
    c.fd = cancel.read.get();
    EXPECT_EQ(wait_for(fds, in(60s), c), Woken::cancelled);
}

TEST(Wait, AskedAgainAfterASignalInterruptsIt) {
    // A handler without SA_RESTART, as CPython installs for SIGINT.
    struct sigaction action {};
    action.sa_handler = [](int) {};
    struct sigaction previous {};
    ASSERT_EQ(::sigaction(SIGUSR1, &action, &previous), 0);
    std::atomic<bool> interrupted{false};
    Cancellation c;
    c.requested = [&] { return interrupted.load(); };
    const pthread_t waiter = ::pthread_self();
    std::thread poker([&] {
        interrupted = true;
        // Until the waiter has noticed: a signal may land before poll() starts.
        for (int i = 0; i < 2000 && interrupted; ++i) {
            ::pthread_kill(waiter, SIGUSR1);
            std::this_thread::sleep_for(5ms);
        }
    });
    EXPECT_EQ(wait_for({}, in(60s), c), Woken::cancelled);
    interrupted = false;
    poker.join();
    ::sigaction(SIGUSR1, &previous, nullptr);
}

TEST(Wait, CheckEveryCatchesARequestThatNoSignalAnnounced) {
    Cancellation c;
    std::atomic<int> asked{0};
    c.requested = [&] { return ++asked >= 3; };
    c.check_every = 5ms;
    EXPECT_EQ(wait_for({}, in(60s), c), Woken::cancelled);
    EXPECT_FALSE(sleep_for(60s, c));
}

class FakeClock final : public Clock {
  public:
    [[nodiscard]] std::chrono::steady_clock::time_point now() const override { return m_now; }
    [[nodiscard]] std::int64_t unix_now() const override { return 1'700'000'000; }
    std::chrono::steady_clock::time_point m_now{};
};

TEST(Wait, TheDeadlineIsReadOnTheGivenClock) {
    FakeClock clock;
    clock.m_now = std::chrono::steady_clock::time_point(100h);
    // Real time would say the deadline is far ahead; the given clock says it has passed.
    EXPECT_EQ(wait_for({}, std::chrono::steady_clock::time_point(99h), {}, clock), Woken::timeout);
    EXPECT_TRUE(sleep_for(0ms, {}, clock));
}

} // namespace
} // namespace withgpu::core
