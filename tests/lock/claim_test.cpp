#include "lock/claim.hpp"
#include "lock/lock_dir.hpp"
#include "lock/queue_files.hpp"
#include "lock/release_watch.hpp"
#include "process.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace withgpu::lock {
namespace {

namespace fs = std::filesystem;
namespace wt = withgpu::testing;

const std::string gpu_a = "GPU-aaaaaaaa-1111-2222-3333-444444444444";
const std::string gpu_b = "GPU-bbbbbbbb-1111-2222-3333-444444444444";

// A shared 1777 lock directory inside a temp directory that other users can traverse.
class ClaimTest : public ::testing::Test {
  protected:
    ClaimTest() {
        EXPECT_EQ(::chmod(m_tmp.path().c_str(), 0755), 0);
        m_path = (m_tmp.path() / "locks").string();
        auto dir = LockDir::open(m_path, true);
        if (!dir) {
            throw std::runtime_error(dir.error().message);
        }
        m_dir.emplace(std::move(*dir));
    }

    [[nodiscard]] const LockDir& dir() const { return *m_dir; }
    [[nodiscard]] const std::string& path() const { return m_path; }
    [[nodiscard]] fs::path file_of(const std::string& uuid,
                                   unsigned uid = static_cast<unsigned>(::geteuid())) const {
        return fs::path(m_path) / lock_file_name(uuid, uid);
    }

    // Claims in this process; fails the test on error or contention.
    Claim claim(const std::vector<std::string>& uuids) {
        auto claim = Claim::try_acquire(dir(), uuids);
        if (!claim || !claim->has_value()) {
            throw std::runtime_error("expected to claim");
        }
        return std::move(**claim);
    }

    // What a look sees now, under the decision lock, with the claim files listed afresh.
    gpu::ClaimMap claims_now(const std::vector<std::string>& uuids,
                             std::vector<std::string>* notes = nullptr) {
        ClaimListing fresh;
        return claims_through(fresh, uuids, notes);
    }

    // The same, through `listing`, as a waiter looks.
    gpu::ClaimMap claims_through(ClaimListing& listing,
                                 const std::vector<std::string>& uuids,
                                 std::vector<std::string>* notes = nullptr) {
        auto decision = DecisionLock::acquire(dir(), DecisionLock::Mode::shared);
        EXPECT_TRUE(decision) << decision.error().message;
        auto claims = read_claims(dir(), uuids, listing, notes);
        if (!claims) {
            ADD_FAILURE() << claims.error().message;
            return {};
        }
        return *claims;
    }

    static void write_file(const fs::path& path, const std::string& content) {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << content;
    }

    static std::string read_file(const fs::path& path) {
        std::ifstream in(path, std::ios::binary);
        std::stringstream content;
        content << in.rdbuf();
        return content.str();
    }

  private:
    wt::TempDir m_tmp;
    std::string m_path;
    std::optional<LockDir> m_dir;
};

TEST_F(ClaimTest, LockFileNameIsKeyedByUuidAndUser) {
    EXPECT_EQ(lock_file_name(gpu_a, 1000), "gpu-" + gpu_a + ".1000.lock");
}

TEST_F(ClaimTest, RefusesUuidsThatAreNotPlainNames) {
    for (const std::string& bad : std::vector<std::string>{"",
                                                           "../x",
                                                           "GPU-1/../../etc",
                                                           "GPU 1",
                                                           "GPU-1\n",
                                                           "GPU-ü",
                                                           ".",
                                                           std::string(300, 'a')}) {
        auto claim = Claim::try_acquire(dir(), {gpu_a, bad});
        ASSERT_FALSE(claim) << bad;
        EXPECT_EQ(claim.error().kind, ErrorKind::failed);
        auto claims = read_claims(dir(), {bad});
        ASSERT_FALSE(claims) << bad;
        EXPECT_EQ(claims.error().kind, ErrorKind::failed);
    }
    // Checked before anything is created.
    EXPECT_TRUE(fs::is_empty(path()));
}

TEST_F(ClaimTest, SecondClaimFromAnotherProcessFailsUntilReleased) {
    std::optional<Claim> held = claim({gpu_a});
    EXPECT_EQ(held->uuids(), std::vector<std::string>{gpu_a});
    EXPECT_EQ(wt::try_claim_elsewhere(path(), {gpu_a}), wt::child_busy);
    EXPECT_EQ(wt::try_claim_elsewhere(path(), {gpu_b}), wt::child_acquired);

    held.reset();
    EXPECT_EQ(wt::try_claim_elsewhere(path(), {gpu_a}), wt::child_acquired);
}

TEST_F(ClaimTest, MovedClaimStaysHeld) {
    Claim first = claim({gpu_a});
    Claim moved(std::move(first));
    EXPECT_EQ(wt::try_claim_elsewhere(path(), {gpu_a}), wt::child_busy);
    EXPECT_EQ(moved.descriptors().size(), 1U);
}

TEST_F(ClaimTest, AllOrNothing) {
    std::optional<Claim> held_b = claim({gpu_b});
    EXPECT_EQ(wt::try_claim_elsewhere(path(), {gpu_a, gpu_b}), wt::child_busy);
    EXPECT_EQ(wt::try_claim_elsewhere(path(), {gpu_b, gpu_a}), wt::child_busy);
    // A was locked first (sorted order) and must have been released again.
    const auto claims = claims_now({gpu_a, gpu_b});
    EXPECT_EQ(claims.count(gpu_a), 0U);
    EXPECT_EQ(claims.count(gpu_b), 1U);
    EXPECT_EQ(wt::try_claim_elsewhere(path(), {gpu_a}), wt::child_acquired);

    held_b.reset();
    EXPECT_EQ(wt::try_claim_elsewhere(path(), {gpu_a, gpu_b}), wt::child_acquired);
}

TEST_F(ClaimTest, DuplicateUuidsAreClaimedOnce) {
    Claim held = claim({gpu_b, gpu_a, gpu_b});
    EXPECT_EQ(held.uuids(), (std::vector<std::string>{gpu_a, gpu_b}));
    EXPECT_EQ(held.descriptors().size(), 2U);
}

TEST_F(ClaimTest, DescriptorsAreCloseOnExecUntilTheRunModuleSaysOtherwise) {
    Claim held = claim({gpu_a, gpu_b});
    for (const int fd : held.descriptors()) {
        EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0) << fd;
    }
}

// The key property: the job inherits the locked open file description, so the claim lives
// as long as the job does, and the kernel drops it when the job dies, even by SIGKILL.
TEST_F(ClaimTest, ClaimLivesInTheExecedJobAndDiesWithIt) {
    std::optional<Claim> held = claim({gpu_a});
    const int fd = held->descriptors().at(0);
    wt::Pipe ready;
    wt::Pipe job_stdin;
    const pid_t job = wt::fork_process([&] {
        if (::dup2(ready.write.get(), STDOUT_FILENO) < 0 ||
            ::dup2(job_stdin.read.get(), STDIN_FILENO) < 0 ||
            ::fcntl(fd, F_SETFD, 0) != 0) { // what run/ does for the job
            return 50;
        }
        const std::string fd_arg = std::to_string(fd);
        ::execl(WITH_GPU_HOLD_FD, "hold_fd", fd_arg.c_str(), static_cast<char*>(nullptr));
        return 51;
    });
    ready.write.reset();
    job_stdin.read.reset();
    ASSERT_EQ(wt::read_with_deadline(ready.read.get(), 16), "ready\n");

    held.reset(); // the supervisor's copy is gone (as if with-gpu was killed)
    EXPECT_EQ(wt::try_claim_elsewhere(path(), {gpu_a}), wt::child_busy);
    EXPECT_EQ(claims_now({gpu_a}).count(gpu_a), 1U);

    ASSERT_EQ(::kill(job, SIGKILL), 0);
    EXPECT_EQ(wt::exit_code_of(job), 128 + SIGKILL);
    EXPECT_EQ(wt::try_claim_elsewhere(path(), {gpu_a}), wt::child_acquired);
    EXPECT_EQ(claims_now({gpu_a}).count(gpu_a), 0U);
}

TEST_F(ClaimTest, ClaimEndsWhenTheClaimingProcessIsKilled) {
    wt::Pipe ready;
    wt::Pipe never;
    const pid_t claimer = wt::fork_process([&] {
        auto dir_again = LockDir::open(path(), false);
        if (!dir_again) {
            return wt::report_error(dir_again.error());
        }
        auto claim = Claim::try_acquire(*dir_again, {gpu_a});
        if (!claim || !claim->has_value() || ::write(ready.write.get(), "x", 1) != 1) {
            return 60;
        }
        char byte = 0;
        never.write.reset(); // only the parent's copy keeps it open
        static_cast<void>(::read(never.read.get(), &byte, 1)); // until killed
        return 0;
    });
    ready.write.reset();
    ASSERT_EQ(wt::read_with_deadline(ready.read.get(), 1), "x");
    EXPECT_EQ(wt::try_claim_elsewhere(path(), {gpu_a}), wt::child_busy);
    ASSERT_EQ(::kill(claimer, SIGKILL), 0);
    EXPECT_EQ(wt::exit_code_of(claimer), 128 + SIGKILL);
    EXPECT_EQ(wt::try_claim_elsewhere(path(), {gpu_a}), wt::child_acquired);
}

TEST_F(ClaimTest, ReadClaimsReportsClaimedAndFreeWithTheRecordedHolder) {
    Claim held = claim({gpu_a});
    {
        std::optional<Claim> released = claim({gpu_b}); // leaves a lock file behind, unlocked
    }
    EXPECT_TRUE(claims_now({gpu_a, gpu_b}).at(gpu_a).pid == std::nullopt); // no record yet

    gpu::ClaimHolder holder;
    holder.pid = 4242;
    holder.supervisor_pid = 4241;
    holder.user = "alice";
    holder.command = "python train.py --name \"run 1\"\nsecond line \xff";
    holder.since_unix = 1700000000;
    ASSERT_TRUE(held.record_holder(holder));

    const auto claims = claims_now({gpu_a, gpu_b, "GPU-never-seen"});
    ASSERT_EQ(claims.size(), 1U);
    const gpu::ClaimHolder& read = claims.at(gpu_a);
    EXPECT_EQ(read.pid, 4242);
    EXPECT_EQ(read.supervisor_pid, 4241);
    EXPECT_EQ(read.user, "alice");
    ASSERT_TRUE(read.command);
    EXPECT_EQ(read.command->rfind("python train.py --name \"run 1\"\nsecond line ", 0), 0U);
    EXPECT_NE(read.command->find("\xEF\xBF\xBD"), std::string::npos); // invalid byte replaced
    EXPECT_EQ(read.since_unix, 1700000000);

    // One line, nothing after it.
    const std::string content = read_file(file_of(gpu_a));
    ASSERT_FALSE(content.empty());
    EXPECT_EQ(content.find('\n'), content.size() - 1);
}

// A waiter's looks list the directory once, however many tickets join, and again only when a
// claim file appears; every claim's state is still read at every look.
TEST_F(ClaimTest, AWatchedListingListsOnlyWhenAClaimFileAppears) {
    auto watch = ReleaseWatch::open(dir());
    ASSERT_FALSE(watch.degraded());
    ClaimListing listing(watch);
    EXPECT_TRUE(claims_through(listing, {gpu_a, gpu_b}).empty());
    EXPECT_EQ(listing.listings(), 1U);

    std::vector<QueueTicket> behind;
    for (int i = 0; i < 50; ++i) {
        auto t = QueueTicket::enter(dir(), [](std::uint64_t) { return std::string("t\n"); });
        ASSERT_TRUE(t.has_value());
        behind.push_back(std::move(*t));
    }
    EXPECT_TRUE(claims_through(listing, {gpu_a, gpu_b}).empty());
    EXPECT_EQ(listing.listings(), 1U); // tickets are no claim files

    std::optional<Claim> held = claim({gpu_a}); // creates its file
    EXPECT_EQ(claims_through(listing, {gpu_a, gpu_b}).count(gpu_a), 1U);
    EXPECT_EQ(listing.listings(), 2U);

    held.reset(); // the file stays, unlocked
    EXPECT_TRUE(claims_through(listing, {gpu_a, gpu_b}).empty());
    held = claim({gpu_a}); // the same file again: no new name, a fresh state
    EXPECT_EQ(claims_through(listing, {gpu_a, gpu_b}).count(gpu_a), 1U);
    EXPECT_EQ(listing.listings(), 2U);

    listing.forget();
    EXPECT_EQ(claims_through(listing, {gpu_a, gpu_b}).count(gpu_a), 1U);
    EXPECT_EQ(listing.listings(), 3U);
}

TEST_F(ClaimTest, AListingWithoutAWatchListsAtEveryLook) {
    ClaimListing listing;
    for (unsigned i = 1; i <= 3; ++i) {
        EXPECT_TRUE(claims_through(listing, {gpu_a}).empty());
        EXPECT_EQ(listing.listings(), i);
    }
}

// The case the listing is kept for: another user claims after our first look.
TEST_F(ClaimTest, AWatchedListingSeesAClaimAnotherUserMakesLater) {
    WITH_GPU_REQUIRE_ROOT("to act as two users");
    auto watch = ReleaseWatch::open(dir());
    ASSERT_FALSE(watch.degraded());
    ClaimListing listing(watch);
    EXPECT_TRUE(claims_through(listing, {gpu_a, gpu_b}).empty());

    wt::ClaimHeldElsewhere nobody(path(), {gpu_b}, wt::nobody_uid);
    ASSERT_TRUE(nobody.started());

    const auto claims = claims_through(listing, {gpu_a, gpu_b});
    ASSERT_EQ(claims.count(gpu_b), 1U);
    EXPECT_EQ(claims.at(gpu_b).file_uid, std::optional<unsigned>(wt::nobody_uid));
    EXPECT_EQ(listing.listings(), 2U);
    EXPECT_EQ(nobody.release(), 0);
    EXPECT_TRUE(claims_through(listing, {gpu_a, gpu_b}).empty());
}

TEST_F(ClaimTest, RecordNamesTheSlurmJobItIsHeldFor) {
    Claim held = claim({gpu_a});
    gpu::ClaimHolder holder;
    holder.pid = 777;
    holder.user = "bob";
    holder.slurm_job = "1234";
    ASSERT_TRUE(held.record_holder(holder));
    const gpu::ClaimHolder read = claims_now({gpu_a}).at(gpu_a);
    EXPECT_EQ(read.slurm_job, "1234");
    EXPECT_EQ(read.user, "bob");
    holder.slurm_job.reset();
    ASSERT_TRUE(held.record_holder(holder));
    EXPECT_EQ(claims_now({gpu_a}).at(gpu_a).slurm_job, std::nullopt);
}

// --hold writes each GPU's hold into that GPU's claim file only; misplaced GPUs go to all.
TEST_F(ClaimTest, AHoldIsRecordedPerGpuAndMisplacedGpusForAll) {
    Claim held = claim({gpu_a, gpu_b});
    gpu::ClaimHolder holder;
    holder.pid = 4242;
    holder.misplaced = {"GPU 3"};
    ASSERT_TRUE(held.record_holder(holder));
    gpu::ClaimHolder holding = holder;
    holding.hold_bytes = 20ULL << 30U;
    holding.hold_since_unix = 1700000000;
    ASSERT_TRUE(held.record_holder(gpu_b, holding));
    const auto claims = claims_now({gpu_a, gpu_b});
    EXPECT_EQ(claims.at(gpu_a).hold_bytes, std::nullopt);
    EXPECT_EQ(claims.at(gpu_b).hold_bytes, 20ULL << 30U);
    EXPECT_EQ(claims.at(gpu_b).hold_since_unix, 1700000000);
    EXPECT_EQ(claims.at(gpu_a).misplaced, (std::vector<std::string>{"GPU 3"}));
    EXPECT_EQ(claims.at(gpu_b).misplaced, (std::vector<std::string>{"GPU 3"}));
}

TEST_F(ClaimTest, ShorterRecordReplacesLongerOneCompletely) {
    Claim held = claim({gpu_a});
    gpu::ClaimHolder holder;
    holder.command = std::string(1000, 'x');
    ASSERT_TRUE(held.record_holder(holder));
    holder.command = "short";
    holder.pid = 7;
    ASSERT_TRUE(held.record_holder(holder));
    const std::string content = read_file(file_of(gpu_a));
    EXPECT_EQ(content.size(), content.find('\n') + 1);
    EXPECT_EQ(claims_now({gpu_a}).at(gpu_a).command, "short");
}

TEST_F(ClaimTest, HugeCommandIsShortenedToARecordTheReaderAccepts) {
    Claim held = claim({gpu_a});
    gpu::ClaimHolder holder;
    holder.pid = 9;
    holder.command = std::string(100000, '\x01'); // escapes to six bytes each
    ASSERT_TRUE(held.record_holder(holder));
    EXPECT_LT(fs::file_size(file_of(gpu_a)), 4096U);
    const auto read = claims_now({gpu_a}).at(gpu_a);
    EXPECT_EQ(read.pid, 9);
    ASSERT_TRUE(read.command);
    EXPECT_FALSE(read.command->empty());
}

TEST_F(ClaimTest, NewClaimClearsThePreviousHoldersRecord) {
    {
        Claim first = claim({gpu_a});
        gpu::ClaimHolder holder;
        holder.pid = 1;
        holder.command = "python train.py --epochs 100"; // longer than the next record
        ASSERT_TRUE(first.record_holder(holder));
    }
    Claim second = claim({gpu_a});
    const auto claims = claims_now({gpu_a});
    ASSERT_EQ(claims.count(gpu_a), 1U);
    EXPECT_EQ(claims.at(gpu_a).pid, std::nullopt);
    // The stale record is cleared by an empty first line, not cut (ext4 writes back a file cut
    // to zero when it is closed); the next record leaves nothing of it behind.
    gpu::ClaimHolder shorter;
    shorter.pid = 2;
    ASSERT_TRUE(second.record_holder(shorter));
    const std::string content = read_file(file_of(gpu_a));
    EXPECT_EQ(content.size(), content.find('\n') + 1) << content;
    EXPECT_EQ(claims_now({gpu_a}).at(gpu_a).pid, 2);
}

TEST_F(ClaimTest, GarbageRecordsLeaveFieldsEmpty) {
    const std::vector<std::string> garbage = {
        "",
        "not json\n",
        "{\"pid\":12",                            // no newline: being written
        std::string(100000, '{'),                 // huge, no newline within what is read
        std::string(5000, ' ') + "{\"pid\":1}\n", // newline beyond the 4 KiB read
        "[1,2,3]\n",
        "\"just a string\"\n",
        "{\"pid\":\"12\",\"supervisor_pid\":1e400,\"user\":5,\"command\":null,\"since\":1.5}\n",
        "{\"pid\":99999999999,\"supervisor_pid\":-99999999999,\"since\":18446744073709551615}\n",
        // In range for the JSON types, out of range for what they mean (issue 12, item 16).
        "{\"pid\":0,\"supervisor_pid\":-1,\"since\":-5,\"user\":\"\",\"command\":\"\"}\n",
        "{\"pid\":2147483647,\"supervisor_pid\":4194305,\"since\":253402300800}\n",
        "{\"pid\":1e3,\"since\":0}\n",
        "{\"user\":\"" + std::string(300, 'u') + "\"}\n",
        std::string("{\"user\":\"a\xff\"}\n"),
        std::string("\0\0\0\n", 4),
    };
    Claim held = claim({gpu_a});
    for (const auto& content : garbage) {
        write_file(file_of(gpu_a), content);
        const auto claims = claims_now({gpu_a});
        ASSERT_EQ(claims.count(gpu_a), 1U) << content.substr(0, 80);
        const auto& holder = claims.at(gpu_a);
        EXPECT_EQ(holder.pid, std::nullopt) << content.substr(0, 80);
        EXPECT_EQ(holder.supervisor_pid, std::nullopt) << content.substr(0, 80);
        EXPECT_EQ(holder.user, std::nullopt) << content.substr(0, 80);
        EXPECT_EQ(holder.command, std::nullopt) << content.substr(0, 80);
        EXPECT_EQ(holder.since_unix, std::nullopt) << content.substr(0, 80);
    }
    // Fields are judged one by one.
    write_file(file_of(gpu_a),
               "{\"pid\":\"12\",\"user\":\"bob\",\"since\":-5,\"supervisor_pid\":4194304,"
               "\"extra\":[1]}\n");
    const auto holder = claims_now({gpu_a}).at(gpu_a);
    EXPECT_EQ(holder.pid, std::nullopt);
    EXPECT_EQ(holder.supervisor_pid, 4194304);
    EXPECT_EQ(holder.user, "bob");
    EXPECT_EQ(holder.since_unix, std::nullopt);
}

TEST_F(ClaimTest, LockFilesAreNeverDeleted) {
    { Claim held = claim({gpu_a, gpu_b}); }
    EXPECT_TRUE(fs::is_regular_file(file_of(gpu_a)));
    EXPECT_TRUE(fs::is_regular_file(file_of(gpu_b)));
    EXPECT_EQ(wt::try_claim_elsewhere(path(), {gpu_a, gpu_b}), wt::child_acquired);
    EXPECT_TRUE(fs::is_regular_file(file_of(gpu_a)));
    EXPECT_TRUE(fs::is_regular_file(file_of(gpu_b)));
    // Readable by all despite the umask, so every user can probe it; writable by its owner.
    EXPECT_EQ(fs::status(file_of(gpu_a)).permissions(), fs::perms(0644));
}

TEST_F(ClaimTest, ReadClaimsNeverCreatesFiles) {
    const auto claims = claims_now({gpu_a, gpu_b});
    EXPECT_TRUE(claims.empty());
    EXPECT_FALSE(fs::exists(file_of(gpu_a)));
    EXPECT_FALSE(fs::exists(file_of(gpu_b)));
}

bool mentions(const std::vector<std::string>& notes, const fs::path& file) {
    return std::any_of(notes.begin(), notes.end(), [&](const std::string& note) {
        return note.find(file.string()) != std::string::npos;
    });
}

// Our own claim file planted by someone as a symlink, a directory or a FIFO: that GPU cannot
// be claimed (an error naming the file), it counts as claimed for us with a note, and no
// other GPU is affected (issue 12, item 5).
TEST_F(ClaimTest, PlantedOwnClaimFileMakesOnlyThatGpuUnusable) {
    const auto target = fs::path(path()).parent_path() / "victim";
    write_file(target, "precious\n");
    const std::string gpu_c = "GPU-cccccccc-1111-2222-3333-444444444444";
    const std::string gpu_d = "GPU-dddddddd-1111-2222-3333-444444444444";
    fs::create_symlink(target, file_of(gpu_a));
    fs::create_directory(file_of(gpu_b));
    ASSERT_EQ(::mkfifo(file_of(gpu_c).c_str(), 0666), 0);
    for (const auto& uuid : {gpu_a, gpu_b, gpu_c}) {
        auto claim = Claim::try_acquire(dir(), {uuid});
        ASSERT_FALSE(claim) << uuid;
        EXPECT_EQ(claim.error().kind, ErrorKind::failed);
        EXPECT_NE(claim.error().message.find(file_of(uuid).string()), std::string::npos)
            << claim.error().message;
        EXPECT_NE(claim.error().hint.find("tampering"), std::string::npos);
    }
    std::vector<std::string> notes;
    const auto claims = claims_now({gpu_a, gpu_b, gpu_c, gpu_d}, &notes); // never hangs
    EXPECT_EQ(claims.size(), 3U);
    EXPECT_EQ(claims.count(gpu_d), 0U);
    for (const auto& uuid : {gpu_a, gpu_b, gpu_c}) {
        EXPECT_EQ(claims.count(uuid), 1U) << uuid;
        EXPECT_TRUE(mentions(notes, file_of(uuid))) << uuid;
    }
    EXPECT_EQ(claim({gpu_d}).uuids(), std::vector<std::string>{gpu_d});
    EXPECT_EQ(read_file(target), "precious\n");
}

// Files named for another user that with-gpu could not have made are no claims: they are
// ignored, with a note naming each (issue 12, item 5).
TEST_F(ClaimTest, PlantedFilesNamedForAnotherUserAreIgnoredWithANote) {
    const unsigned other = static_cast<unsigned>(::geteuid()) + 4242;
    const auto target = fs::path(path()).parent_path() / "victim";
    write_file(target, "precious\n");
    fs::create_symlink(target, file_of(gpu_a, other));
    fs::create_directory(file_of(gpu_b, other));
    const std::string gpu_c = "GPU-cccccccc-1111-2222-3333-444444444444";
    ASSERT_EQ(::mkfifo(file_of(gpu_c, other).c_str(), 0666), 0);
    const std::string gpu_d = "GPU-dddddddd-1111-2222-3333-444444444444";
    write_file(file_of(gpu_d, other), "{\"pid\":1}\n"); // ours, not the other user's
    const Fd held_by_us(::open(file_of(gpu_d, other).c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(held_by_us);
    ASSERT_EQ(::flock(held_by_us.get(), LOCK_EX), 0);

    std::vector<std::string> notes;
    EXPECT_TRUE(claims_now({gpu_a, gpu_b, gpu_c, gpu_d}, &notes).empty());
    for (const auto& uuid : {gpu_a, gpu_b, gpu_c, gpu_d}) {
        EXPECT_TRUE(mentions(notes, file_of(uuid, other))) << uuid;
    }
    Claim all = claim({gpu_a, gpu_b, gpu_c, gpu_d});
    EXPECT_EQ(all.uuids().size(), 4U);
    EXPECT_EQ(read_file(target), "precious\n");
}

// Another user's claim file that we may not read might be a real claim: it counts as one.
TEST_F(ClaimTest, AnotherUsersUnreadableClaimFileCountsAsClaimed) {
    WITH_GPU_REQUIRE_ROOT("to act as two users");
    { Claim created = claim({gpu_a}); } // root's file, now free
    ASSERT_EQ(::chmod(file_of(gpu_a).c_str(), 0), 0);
    const int code = wt::run_in_child([&] {
        if (!wt::become_nobody()) {
            return 80;
        }
        auto dir_again = LockDir::open(path(), false);
        if (!dir_again) {
            return wt::report_error(dir_again.error());
        }
        std::vector<std::string> notes;
        auto claims = read_claims(*dir_again, {gpu_a, gpu_b}, &notes);
        if (!claims || claims->size() != 1 || claims->count(gpu_a) != 1 ||
            !mentions(notes, file_of(gpu_a, 0))) {
            return 81;
        }
        auto taken = Claim::try_acquire(*dir_again, {gpu_a});
        if (!taken || taken->has_value()) {
            return 82;
        }
        auto other = Claim::try_acquire(*dir_again, {gpu_b});
        return other && other->has_value() ? 0 : 83;
    });
    EXPECT_EQ(code, 0);
}

// A file under our name that someone else owns could be deleted by them while we hold it.
TEST_F(ClaimTest, OwnClaimFileOwnedByAnotherUserIsRefused) {
    WITH_GPU_REQUIRE_ROOT("to act as two users");
    write_file(file_of(gpu_a), "");
    ASSERT_EQ(::chown(file_of(gpu_a).c_str(), wt::nobody_uid, wt::nobody_gid), 0);
    auto claim = Claim::try_acquire(dir(), {gpu_a});
    ASSERT_FALSE(claim);
    EXPECT_NE(claim.error().message.find("owned by another user"), std::string::npos)
        << claim.error().message;
    std::vector<std::string> notes;
    EXPECT_EQ(claims_now({gpu_a}, &notes).count(gpu_a), 1U);
    EXPECT_TRUE(mentions(notes, file_of(gpu_a)));
}

// Issue 12, item 15: user A made the lock file of a GPU, user B holds the GPU; A deletes
// every file it owns and claims again. That must fail while B holds the GPU.
TEST_F(ClaimTest, TheCreatorOfALockFileCannotDefeatAnotherUsersClaim) {
    WITH_GPU_REQUIRE_ROOT("to act as two users");
    constexpr uid_t user_a = 61001;
    constexpr uid_t user_b = 61002;
    const auto as = [](uid_t uid) { return wt::become(uid, uid); };
    // A claims once (its files stay behind), then B claims and holds.
    EXPECT_EQ(
        wt::run_in_child([&] { return as(user_a) ? wt::try_claim_here(path(), {gpu_a}) : 70; }),
        wt::child_acquired);
    wt::ClaimHeldElsewhere b(path(), {gpu_a}, user_b);
    ASSERT_TRUE(b.started());

    const int attack = wt::run_in_child([&] {
        if (!as(user_a)) {
            return 70;
        }
        for (const auto& entry : fs::directory_iterator(path())) {
            static_cast<void>(::unlink(entry.path().c_str())); // only its own files go
        }
        return wt::try_claim_here(path(), {gpu_a});
    });
    EXPECT_EQ(attack, wt::child_busy);
    EXPECT_EQ(b.release(), 0);
    EXPECT_EQ(
        wt::run_in_child([&] { return as(user_a) ? wt::try_claim_here(path(), {gpu_a}) : 70; }),
        wt::child_acquired);
}

TEST_F(ClaimTest, ExclusiveDecisionLockExcludesReaders) {
    const auto decide = fs::path(path()) / "decide.lock";
    const auto probe = [&](int operation) {
        return wt::run_in_child([&] {
            const Fd fd(::open(decide.c_str(), O_RDONLY | O_CLOEXEC));
            if (!fd) {
                return 2;
            }
            return ::flock(fd.get(), operation | LOCK_NB) == 0 ? 0 : 1;
        });
    };
    {
        auto exclusive = DecisionLock::acquire(dir(), DecisionLock::Mode::exclusive);
        ASSERT_TRUE(exclusive) << exclusive.error().message;
        EXPECT_EQ(probe(LOCK_SH), 1);
        exclusive->release();
        EXPECT_EQ(probe(LOCK_SH), 0);
    }
    auto shared = DecisionLock::acquire(dir(), DecisionLock::Mode::shared);
    ASSERT_TRUE(shared) << shared.error().message;
    EXPECT_EQ(probe(LOCK_SH), 0);
    EXPECT_EQ(probe(LOCK_EX), 1);
}

// Many processes competing for two GPUs with overlapping requests: every claim must be
// exclusive. Each holder logs enter/exit with O_APPEND writes while it holds the claim.
TEST_F(ClaimTest, ConcurrentClaimersNeverOverlap) {
    constexpr int processes = 16;
    constexpr int wins_each = 25;
    constexpr int max_rounds = 1000000;
    const auto log_path = fs::path(path()).parent_path() / "events.log";
    wt::Pipe start;
    std::vector<pid_t> children;
    children.reserve(static_cast<std::size_t>(processes));
    for (int p = 0; p < processes; ++p) {
        children.push_back(wt::fork_process([&, p] {
            start.write.reset();
            char byte = 0;
            static_cast<void>(::read(start.read.get(), &byte, 1));
            const Fd log(::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
            auto dir_again = LockDir::open(path(), false);
            if (!log || !dir_again) {
                return 90;
            }
            const auto event = [&](char kind, const std::string& uuid) {
                const std::string line =
                    std::string(1, kind) + " " + uuid + " " + std::to_string(::getpid()) + "\n";
                return ::write(log.get(), line.data(), line.size()) ==
                       static_cast<ssize_t>(line.size());
            };
            long busy = 0;
            int wins = 0;
            for (int round = 0; wins < wins_each; ++round) {
                if (round > max_rounds) {
                    return 92; // starved for far too long
                }
                std::vector<std::string> wanted;
                switch ((p + round) % 3) {
                case 0:
                    wanted = {gpu_a};
                    break;
                case 1:
                    wanted = {gpu_b};
                    break;
                default:
                    wanted = {gpu_b, gpu_a};
                    break;
                }
                auto claim = Claim::try_acquire(*dir_again, wanted);
                if (!claim) {
                    return wt::report_error(claim.error());
                }
                if (!claim->has_value()) {
                    ++busy;
                    continue;
                }
                ++wins;
                for (const auto& uuid : (*claim)->uuids()) {
                    if (!event('E', uuid)) {
                        return 91;
                    }
                }
                ::usleep(100); // hold it a moment so that others collide with us
                for (const auto& uuid : (*claim)->uuids()) {
                    if (!event('X', uuid)) {
                        return 91;
                    }
                }
            }
            return event('B', std::to_string(busy)) ? 0 : 91;
        }));
    }
    start.write.reset();
    for (const pid_t child : children) {
        EXPECT_EQ(wt::exit_code_of(child), 0);
    }

    std::ifstream log(log_path);
    std::map<std::string, long> holder_of; // uuid -> pid, 0 when free
    std::map<std::string, int> entries;
    char kind = 0;
    std::string uuid;
    long pid = 0;
    long busy = 0;
    while (log >> kind >> uuid >> pid) {
        if (kind == 'B') {
            busy += std::stol(uuid); // how often a claimer found a GPU taken
        } else if (kind == 'E') {
            ASSERT_EQ(holder_of[uuid], 0) << "pid " << pid << " entered " << uuid << " while pid "
                                          << holder_of[uuid] << " held it";
            holder_of[uuid] = pid;
            ++entries[uuid];
        } else {
            ASSERT_EQ(kind, 'X');
            ASSERT_EQ(holder_of[uuid], pid) << uuid;
            holder_of[uuid] = 0;
        }
    }
    EXPECT_GT(busy, 0) << "no contention: the test proved nothing";
    EXPECT_GE(entries[gpu_a] + entries[gpu_b], processes * wins_each);
    EXPECT_GT(entries[gpu_a], 0);
    EXPECT_GT(entries[gpu_b], 0);
    EXPECT_EQ(holder_of[gpu_a], 0);
    EXPECT_EQ(holder_of[gpu_b], 0);
}

} // namespace
} // namespace withgpu::lock
