#include "report/decision_report.hpp"
#include "report/status_json.hpp"
#include "report/status_table.hpp"
#include "report/waiting_report.hpp"

#include <gtest/gtest.h>

namespace withgpu::report {
namespace {

constexpr std::uint64_t gib = 1024ULL * 1024 * 1024;

gpu::MachineSnapshot machine() {
    gpu::MachineSnapshot m;
    m.driver_version = "550.54.15";
    gpu::GpuSnapshot a;
    a.index = 0;
    a.uuid = "GPU-aaaa";
    a.name = "NVIDIA A100-SXM4-80GB";
    a.pci_bus_id = "00000000:07:00.0";
    a.memory_total_bytes = 80 * gib;
    a.memory_used_bytes = 20 * gib;
    a.memory_free_bytes = 60 * gib;
    a.utilization_percent = 87;
    a.temperature_c = 71;
    a.power_w = 312.46;
    a.power_limit_w = 400.0;
    gpu::Process p;
    p.pid = 4242;
    p.used_memory_bytes = 20 * gib;
    p.user = "alice";
    p.command = "python train.py";
    a.processes = std::vector<gpu::Process>{p};
    m.gpus.push_back(a);

    gpu::GpuSnapshot b;
    b.index = 1;
    b.uuid = "GPU-bbbb";
    b.name = "Tesla T4";
    b.pci_bus_id = "00000000:08:00.0";
    b.memory_total_bytes = 16 * gib;
    b.memory_used_bytes = 0;
    b.memory_free_bytes = 16 * gib;
    b.processes = std::vector<gpu::Process>{};
    m.gpus.push_back(b);

    gpu::GpuSnapshot lost;
    lost.index = 2;
    lost.uuid = "GPU-cccc";
    lost.error = "GPU is lost";
    m.gpus.push_back(lost);
    return m;
}

TEST(StatusJsonTest, FieldsUnitsAndNulls) {
    gpu::ClaimMap claims;
    claims["GPU-aaaa"] = gpu::ClaimHolder{4242, 4241, "alice", "python train.py", 1700000000};
    auto doc = status_json(machine(), claims, {});
    EXPECT_EQ(doc["version"], 1);
    EXPECT_EQ(doc["driver_version"], "550.54.15");
    EXPECT_TRUE(doc["queue"].is_array());
    const auto& a = doc["gpus"][0];
    EXPECT_EQ(a["memory_total_mib"], 81920);
    EXPECT_EQ(a["memory_used_mib"], 20480);
    EXPECT_EQ(a["memory_free_mib"], 61440);
    EXPECT_EQ(a["power_w"], 312.5);
    EXPECT_EQ(a["processes"][0]["user"], "alice");
    EXPECT_EQ(a["processes"][0]["used_memory_mib"], 20480);
    EXPECT_EQ(a["claim"]["pid"], 4242);
    EXPECT_EQ(a["claim"]["since"], "2023-11-14T22:13:20Z");
    const auto& b = doc["gpus"][1];
    EXPECT_TRUE(b["utilization_percent"].is_null());
    EXPECT_TRUE(b["temperature_c"].is_null());
    EXPECT_TRUE(b["power_w"].is_null());
    EXPECT_TRUE(b["claim"].is_null());
    EXPECT_EQ(doc["gpus"][2]["error"], "GPU is lost");
    EXPECT_TRUE(doc["gpus"][2]["memory_total_mib"].is_null());
    EXPECT_FALSE(doc["gpus"][2]["processes_known"].get<bool>());
}

TEST(StatusTableTest, ShowsFiguresProcessesClaimsAndErrors) {
    gpu::ClaimMap claims;
    claims["GPU-aaaa"] = gpu::ClaimHolder{4242, std::nullopt, "alice", "train", 1000};
    // Plain unless asked for colour; the T4's unknown figures are "n/a", never 0.
    EXPECT_EQ(status_table(machine(), claims, {}, 1000 + 2 * 3600 + 13 * 60),
              "NVIDIA driver 550.54.15, 3 GPUs\n"
              "GPU  NAME            MEMORY                    UTIL  TEMP      POWER  CLAIM\n"
              "  0  A100-SXM4-80GB  [███░░░░░░░░░] 20/80 GiB   87%  71°C  312/400 W  "
              "claimed by alice 2h13m\n"
              "     └ pid 4242  alice  20 GiB  python train.py\n"
              "  1  Tesla T4        [░░░░░░░░░░░░]  0/16 GiB   n/a   n/a        n/a  free\n"
              "  2  ?               error: GPU is lost                               free\n");
}

TEST(DecisionReportTest, JsonAndTextCarryEveryVerdict) {
    selection::Decision d;
    d.outcome = selection::Decision::Outcome::chosen;
    d.chosen = {1};
    d.summary = "chose GPU 1";
    d.verdicts = {
        {0, {{"util 87% > 10%", false}}, false, false},
        {1, {}, false, true},
        {2, {{"GPU is lost", true}}, false, false},
    };
    auto doc = decision_json(machine(), d);
    EXPECT_EQ(doc["outcome"], "chosen");
    EXPECT_EQ(doc["chosen"], nlohmann::json::array({1}));
    EXPECT_EQ(doc["gpus"][0]["reasons"][0]["reason"], "util 87% > 10%");
    EXPECT_FALSE(doc["gpus"][0]["eligible"].get<bool>());
    EXPECT_TRUE(doc["gpus"][1]["chosen"].get<bool>());
    EXPECT_TRUE(doc["gpus"][2]["reasons"][0]["permanent"].get<bool>());
    EXPECT_EQ(decision_text(machine(), d),
              "GPU 0  NVIDIA A100-SXM4-80GB       60 GiB free  rejected: util 87% > 10%\n"
              "GPU 1  Tesla T4                    16 GiB free  chosen\n"
              "GPU 2                                           rejected: GPU is lost\n"
              "chose GPU 1\n");
    EXPECT_EQ(rejection_lines(d), "  GPU 0: util 87% > 10%\n  GPU 2: GPU is lost\n");
    EXPECT_STREQ(outcome_name(selection::Decision::Outcome::impossible), "impossible");
}

// One user's Latin-1 argument must not make the JSON unprintable for everyone.
TEST(StatusJsonTest, InvalidUtf8InEveryForeignStringIsReplaced) {
    auto m = machine();
    m.driver_version = "550\xff";
    m.gpus[0].name = "A100 \xc3";
    (*m.gpus[0].processes)[0].user = "caf\xe9";
    (*m.gpus[0].processes)[0].command = "sh -c sleep caf\xe9";
    m.gpus[2].error = "lost \x80";
    gpu::ClaimHolder holder;
    holder.user = "b\xf0"
                  "b";
    holder.command = "x\xed\xa0\x80";
    queue::Ticket ticket;
    ticket.user = "\xfe";
    ticket.command = "wait \xc0\xaf";
    const auto doc = status_json(m, {{"GPU-aaaa", holder}}, {ticket});
    std::string dumped;
    ASSERT_NO_THROW(dumped = doc.dump());
    const auto parsed = nlohmann::json::parse(dumped);
    const std::string r = "\xEF\xBF\xBD";
    EXPECT_EQ(parsed["driver_version"], "550" + r);
    EXPECT_EQ(parsed["gpus"][0]["name"], "A100 " + r);
    EXPECT_EQ(parsed["gpus"][0]["processes"][0]["user"], "caf" + r);
    EXPECT_EQ(parsed["gpus"][0]["processes"][0]["command"], "sh -c sleep caf" + r);
    EXPECT_EQ(parsed["gpus"][2]["error"], "lost " + r);
    EXPECT_EQ(parsed["gpus"][0]["claim"]["user"], "b" + r + "b");
    EXPECT_EQ(parsed["gpus"][0]["claim"]["command"], "x" + r + r + r);
    EXPECT_EQ(parsed["queue"][0]["user"], r);
    EXPECT_EQ(parsed["queue"][0]["command"], "wait " + r + r);
    // Control characters are data here: kept, and escaped as JSON requires.
    (*m.gpus[0].processes)[0].command = "a\x1b[2Jb";
    EXPECT_EQ(status_json(m, {}, {})["gpus"][0]["processes"][0]["command"].dump(),
              "\"a\\u001b[2Jb\"");
}

TEST(DecisionReportTest, JsonAndTextAreSafeWithForeignNames) {
    auto m = machine();
    m.gpus[1].name = "T4\x1b]0;x\x07\xe9";
    selection::Decision d;
    d.verdicts = {{1, {{"not in --gpu \xff", true}}, false, false}};
    d.summary = "need 1 GPU, none could ever qualify";
    std::string dumped;
    ASSERT_NO_THROW(dumped = decision_json(m, d).dump());
    const auto parsed = nlohmann::json::parse(dumped);
    EXPECT_EQ(parsed["gpus"][0]["reasons"][0]["reason"], "not in --gpu \xEF\xBF\xBD");
    // The driver's name is made printable here; reasons arrive from selection already made
    // printable, and are shown as they are.
    EXPECT_EQ(
        decision_text(m, d),
        "GPU 1  T4?]0;x?\xEF\xBF\xBD                   16 GiB free  rejected: not in --gpu \xff\n"
        "need 1 GPU, none could ever qualify\n");
}

// A claim's rejection as selection words it, its age apart.
selection::Rejection held_by(const std::string& user, const std::string& age) {
    const std::string tail = " for " + age;
    return {"claimed by " + user + tail, false, tail.size()};
}

queue::Turn waiting_turn(const std::string& age) {
    queue::Turn turn;
    turn.position = 3;
    turn.decision.verdicts = {
        {0, {held_by("alice", age)}, false, false},
        {1, {{"5.2 GiB free < 20 GiB", false}}, false, false},
        {2, {{"GPU is lost", true}, {"claimed by bob", false}}, false, false}, // never: not named
        {3, {}, false, false},                                                 // eligible
    };
    return turn;
}

TEST(WaitingLineTest, NamesTheGpusThatMayFreeUpWithTheirReasons) {
    const WaitingState state = waiting_state(waiting_turn("2h13m"), 2);
    EXPECT_EQ(waiting_line(state, std::chrono::seconds(65)),
              "waiting for 2 GPUs, 3rd in queue, 1m05s: GPU 0: claimed by alice for 2h13m; "
              "GPU 1: 5.2 GiB free < 20 GiB");
    EXPECT_EQ(waiting_line(state, std::nullopt),
              "waiting for 2 GPUs, 3rd in queue: GPU 0: claimed by alice for 2h13m; "
              "GPU 1: 5.2 GiB free < 20 GiB");
    EXPECT_EQ(waiting_line(waiting_state(queue::Turn{}, 1), std::nullopt),
              "waiting for 1 GPU, 1st in queue");
}

TEST(WaitingLineTest, CountsTheGpusBeyondTheFourNamed) {
    queue::Turn turn;
    for (unsigned i = 0; i < 6; ++i) {
        turn.decision.verdicts.push_back({i, {{"busy", false}}, false, false});
    }
    const WaitingState state = waiting_state(turn, 1);
    EXPECT_EQ(state.named.size(), max_gpus_named);
    EXPECT_EQ(state.more, 2U);
    EXPECT_EQ(waiting_line(state, std::nullopt),
              "waiting for 1 GPU, 1st in queue: GPU 0: busy; GPU 1: busy; GPU 2: busy; GPU 3: "
              "busy; 2 more");
}

TEST(WaitingLineTest, OnlyAgesChangingIsNotNews) {
    const WaitingState before = waiting_state(waiting_turn("1s"), 2);
    EXPECT_TRUE(same_but_ages(before, waiting_state(waiting_turn("3s"), 2)));
    EXPECT_TRUE(same_but_ages(before, waiting_state(waiting_turn("1h00m"), 2)));
    EXPECT_FALSE(same_but_ages(before, waiting_state(waiting_turn("1s"), 1)));
    queue::Turn moved_up = waiting_turn("1s");
    moved_up.position = 2;
    EXPECT_FALSE(same_but_ages(before, waiting_state(moved_up, 2)));
    queue::Turn other_holder = waiting_turn("1s");
    other_holder.decision.verdicts[0].rejections[0] = held_by("carol", "1s");
    EXPECT_FALSE(same_but_ages(before, waiting_state(other_holder, 2)));
    queue::Turn freed = waiting_turn("1s");
    freed.decision.verdicts[1].rejections.clear();
    EXPECT_FALSE(same_but_ages(before, waiting_state(freed, 2)));
}

} // namespace
} // namespace withgpu::report
