#include "queue/ticket.hpp"
#include "queue/turn.hpp"
#include "snapshot_builder.hpp"

#include <gtest/gtest.h>

namespace withgpu::queue {
namespace {

using withgpu::testing::make_gpu;
using withgpu::testing::make_machine;
using withgpu::testing::uuid_for;

selection::Request wants(unsigned n) {
    selection::Request r;
    r.min_gpus = r.max_gpus = n;
    return r;
}

selection::Request wants_type(unsigned n, std::string type) {
    selection::Request r = wants(n);
    r.gpu_type = std::move(type);
    r.strict_type = true;
    return r;
}

Ticket ticket(std::uint64_t seq, selection::Request request) {
    Ticket t;
    t.seq = seq;
    t.pid = static_cast<int>(1000 + seq);
    t.user = "u" + std::to_string(seq);
    t.request = std::move(request);
    return t;
}

gpu::MachineSnapshot mixed_machine() {
    gpu::MachineSnapshot m;
    m.gpus = {make_gpu(0), make_gpu(1), make_gpu(2, "Tesla V100-SXM2-16GB", 16, 16)};
    return m;
}

selection::GpuRef ref(selection::GpuRef::Kind kind, std::string text, unsigned index) {
    selection::GpuRef r;
    r.kind = kind;
    r.text = text;
    r.index = index;
    r.key = std::move(text);
    return r;
}

// Every field of the ticket and of what it holds differs from its default, so a field that
// encode() or decode() forgets cannot come back equal.
Ticket ticket_with_every_field_set() {
    using Kind = selection::GpuRef::Kind;
    Ticket t;
    t.seq = 42;
    t.pid = 1042;
    t.user = "alice";
    t.command = "python train.py --name \"x\"";
    t.since_unix = 1700000000;
    selection::Request& r = t.request;
    r.min_gpus = 2;
    r.max_gpus = 4;
    r.only = *selection::parse_gpu_list("2,GPU-13,0000:17:00.0", "--gpu", false);
    r.exclude = *selection::parse_gpu_list("name:T4", "--exclude", true);
    r.exclude.push_back(ref(Kind::index, "5", 5));
    r.visible.restricted = true;
    r.visible.refs = {ref(Kind::minor_number, "3", 3), ref(Kind::minor_number, "7", 7)};
    r.visible.original = "3,7";
    r.visible.source = "SLURM_STEP_GPUS";
    r.gpu_type = "A100";
    r.strict_type = true;
    r.min_free_bytes = 20ULL << 30U;
    r.max_utilization_percent = 10;
    r.max_temperature_c = 80;
    r.max_power_w = 250.5;
    r.require_idle = true;
    return t;
}

TEST(TicketCodecTest, RoundTripsEveryField) {
    const Ticket t = ticket_with_every_field_set();
    const std::string line = encode(t);
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1);
    auto back = decode(line);
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_TRUE(*back == t) << "sent:     " << line << "received: " << encode(*back);
    EXPECT_EQ(encode(*back), line);
}

TEST(TicketCodecTest, LeavesOutTheBannedGpus) {
    // request.banned only words the waiter's own reasons; the same GPUs are in `exclude`,
    // which is what other waiters need.
    Ticket t = ticket_with_every_field_set();
    t.request.banned = *selection::parse_gpu_list("1", "banned", false);
    t.request.exclude.insert(
        t.request.exclude.end(), t.request.banned.begin(), t.request.banned.end());
    auto back = decode(encode(t));
    ASSERT_TRUE(back.has_value()) << back.error().message;
    Ticket expected = t;
    expected.request.banned.clear();
    EXPECT_TRUE(*back == expected) << encode(*back);
}

TEST(TicketCodecTest, AFilterMissingFromAnOlderTicketKeepsItsDefault) {
    // A ticket written before a filter existed is still honoured: that waiter did not ask
    // for it. (Encoding visits every filter of selection::for_each_filter.)
    Ticket t = ticket_with_every_field_set();
    std::string line = encode(t);
    const std::string field = "\"max_temperature_c\":80,";
    const auto at = line.find(field);
    ASSERT_NE(at, std::string::npos) << line;
    line.erase(at, field.size());
    auto back = decode(line);
    ASSERT_TRUE(back.has_value()) << back.error().message;
    t.request.max_temperature_c.reset();
    EXPECT_TRUE(*back == t) << encode(*back);
}

TEST(TicketCodecTest, RejectsGarbage) {
    for (const char* text :
         {"", "{}", "not json", "{\"version\":2}", "[1,2]", "{\"version\":1,\"seq\":\"x\"}"}) {
        auto t = decode(text);
        EXPECT_FALSE(t.has_value()) << text;
    }
}

TEST(TurnTest, FirstInLineGetsTheBestFreeGpu) {
    auto turn = take_turn(make_machine(2), {}, wants(1), {}, 0);
    EXPECT_EQ(turn.position, 1U);
    EXPECT_EQ(turn.decision.outcome, selection::Decision::Outcome::chosen);
    EXPECT_FALSE(turn.wait_behind.has_value());
}

TEST(TurnTest, LaterWaiterNeverTakesAGpuAnEarlierOneCouldUse) {
    // GPU 0 is claimed, GPU 1 is free; the earlier waiter needs 2, so GPU 1 waits for it.
    gpu::ClaimMap claims{{uuid_for(0), {}}};
    auto turn = take_turn(make_machine(2), {ticket(1, wants(2))}, wants(1), claims, 0);
    EXPECT_EQ(turn.position, 2U);
    EXPECT_EQ(turn.decision.outcome, selection::Decision::Outcome::none_now);
    ASSERT_TRUE(turn.wait_behind.has_value());
    EXPECT_EQ(*turn.wait_behind, 1U);
    const auto& reasons = turn.decision.verdicts[1].rejections;
    ASSERT_EQ(reasons.size(), 1U);
    EXPECT_EQ(reasons[0].reason, "wanted by u1 waiting before us (1st in queue, pid 1001)");
    EXPECT_FALSE(reasons[0].permanent);
}

TEST(TurnTest, ANewcomerRespectsTheQueueToo) {
    auto turn = take_turn(make_machine(4), {ticket(7, wants(4))}, wants(1), {}, 0);
    EXPECT_EQ(turn.decision.outcome, selection::Decision::Outcome::none_now);
}

TEST(TurnTest, JobsWantingOtherGpusGoAhead) {
    // The A100 waiter cannot use the V100, so a V100 job behind it runs at once.
    gpu::ClaimMap claims{{uuid_for(0), {}}, {uuid_for(1), {}}};
    auto turn = take_turn(
        mixed_machine(), {ticket(1, wants_type(1, "A100"))}, wants_type(1, "V100"), claims, 0);
    EXPECT_EQ(turn.decision.outcome, selection::Decision::Outcome::chosen);
    EXPECT_EQ(turn.decision.chosen, std::vector<unsigned>{2});
    EXPECT_FALSE(turn.wait_behind.has_value());
}

TEST(TurnTest, AnyGpuWaiterMayUseGpusNoEarlierWaiterWants) {
    gpu::ClaimMap claims{{uuid_for(0), {}}};
    auto turn = take_turn(mixed_machine(), {ticket(1, wants_type(2, "A100"))}, wants(1), claims, 0);
    EXPECT_EQ(turn.decision.chosen, std::vector<unsigned>{2});
    EXPECT_FALSE(turn.wait_behind.has_value()); // GPU 2 is ours to watch
}

TEST(TurnTest, WaitsBehindTheLatestConflictingWaiter) {
    gpu::ClaimMap claims{{uuid_for(0), {}}, {uuid_for(1), {}}, {uuid_for(2), {}}};
    std::vector<Ticket> earlier{ticket(3, wants_type(1, "A100")),
                                ticket(5, wants_type(1, "V100")),
                                ticket(9, wants_type(1, "A100")),
                                ticket(11, wants_type(1, "V100"))};
    auto turn = take_turn(mixed_machine(), earlier, wants_type(1, "A100"), claims, 0);
    EXPECT_EQ(turn.position, 5U);
    ASSERT_TRUE(turn.wait_behind.has_value());
    EXPECT_EQ(*turn.wait_behind, 9U);
}

// take_turn judges each distinct request once, and only the first few distinct ones are
// remembered: many distinct requests (more than it remembers) and repeated ones must reserve
// exactly what judging each ticket on its own would, named after the earliest waiter.
TEST(TurnTest, ManyDistinctAndRepeatedRequestsReserveWhatEachWants) {
    auto machine = make_machine(14);
    std::vector<Ticket> earlier;
    for (unsigned i = 0; i < 12; ++i) { // GPU i for waiter i, each request distinct
        selection::Request one = wants(1);
        one.only.push_back(ref(selection::GpuRef::Kind::index, std::to_string(i), i));
        earlier.push_back(ticket(1 + i, one));
    }
    for (unsigned i = 0; i < 12; ++i) { // the same requests again, later
        earlier.push_back(ticket(20 + i, earlier[i].request));
    }
    const auto turn = take_turn(machine, earlier, wants(2), {}, 0);
    EXPECT_EQ(turn.decision.chosen, (std::vector<unsigned>{12, 13}));
    for (unsigned i = 0; i < 12; ++i) {
        const auto& rejections = turn.decision.verdicts[i].rejections;
        ASSERT_EQ(rejections.size(), 1U) << i;
        EXPECT_NE(rejections[0].reason.find("pid " + std::to_string(1001 + i)), std::string::npos)
            << rejections[0].reason;
    }
    EXPECT_TRUE(turn.decision.verdicts[12].rejections.empty());
}

TEST(TurnTest, MultiGpuHeadIsNotStarvedByOneGpuJobs) {
    // Replay: a 4-GPU job waits while 1-GPU jobs keep arriving. Each time a GPU frees,
    // none of the later 1-GPU jobs may take it, so the head's GPUs accumulate.
    auto machine = make_machine(4);
    gpu::ClaimMap claims{
        {uuid_for(0), {}}, {uuid_for(1), {}}, {uuid_for(2), {}}, {uuid_for(3), {}}};
    std::vector<Ticket> queue{ticket(1, wants(4))};
    for (unsigned freed = 0; freed < 4; ++freed) {
        claims.erase(uuid_for(freed));
        auto small = take_turn(machine, queue, wants(1), claims, 0);
        EXPECT_NE(small.decision.outcome, selection::Decision::Outcome::chosen) << freed;
        queue.push_back(ticket(2 + freed, wants(1)));
    }
    auto head = take_turn(machine, {}, wants(4), claims, 0);
    EXPECT_EQ(head.decision.outcome, selection::Decision::Outcome::chosen);
    EXPECT_EQ(head.decision.chosen.size(), 4U);
}

TEST(TurnTest, ImpossibleStaysImpossible) {
    auto turn = take_turn(make_machine(2), {ticket(1, wants(1))}, wants(3), {}, 0);
    EXPECT_EQ(turn.decision.outcome, selection::Decision::Outcome::impossible);
}

TEST(TurnTest, UsableGpusIgnoreClaimsAndMetricsButNotIdentity) {
    auto machine = mixed_machine();
    machine.gpus[0].utilization_percent = 100;
    selection::Request r = wants(1);
    r.max_utilization_percent = 10;
    r.exclude = *selection::parse_gpu_list("1", "--exclude", true);
    EXPECT_EQ(usable_gpus(machine, r), (std::set<std::string>{uuid_for(0), uuid_for(2)}));
}

TEST(TurnTest, Ordinals) {
    EXPECT_EQ(ordinal(1), "1st");
    EXPECT_EQ(ordinal(2), "2nd");
    EXPECT_EQ(ordinal(3), "3rd");
    EXPECT_EQ(ordinal(4), "4th");
    EXPECT_EQ(ordinal(11), "11th");
    EXPECT_EQ(ordinal(12), "12th");
    EXPECT_EQ(ordinal(13), "13th");
    EXPECT_EQ(ordinal(21), "21st");
    EXPECT_EQ(ordinal(112), "112th");
}

} // namespace
} // namespace withgpu::queue

namespace withgpu::queue {
namespace {

// Issue 12, item 14: a stopped waiter must not block the others indefinitely.
TEST(StoppedWaiterTest, IsPassedOverOnlyWhenStoppedPastTheGrace) {
    Ticket t;
    t.since_unix = 1000;
    const std::int64_t grace = stopped_waiter_grace.count();
    EXPECT_FALSE(passed_over(t, WaiterProcess::running, 1000 + 100 * grace));
    EXPECT_FALSE(passed_over(t, WaiterProcess::unknown, 1000 + 100 * grace));
    EXPECT_FALSE(passed_over(t, WaiterProcess::stopped, 1000));
    EXPECT_FALSE(passed_over(t, WaiterProcess::stopped, 1000 + grace - 1));
    EXPECT_TRUE(passed_over(t, WaiterProcess::stopped, 1000 + grace));
    EXPECT_TRUE(passed_over(t, WaiterProcess::stopped, 1002, std::chrono::seconds(2)));
}

TEST(StoppedWaiterTest, TheTurnNamesThePidOfTheWaiterWaitedBehind) {
    const auto m = make_machine(2);
    const Turn turn = take_turn(m, {ticket(1, wants(2)), ticket(2, wants(1))}, wants(1), {}, 0);
    ASSERT_TRUE(turn.wait_behind);
    EXPECT_EQ(*turn.wait_behind, 2U);
    EXPECT_EQ(turn.wait_behind_pid, 1002);
}

} // namespace
} // namespace withgpu::queue
