// The status board and --status --json, byte for byte, for machines built here, compared
// with the files in tests/unit/golden/.
//
// After an intended change of the output, regenerate the files and review the diff:
//   WITH_GPU_UPDATE_GOLDEN=1 build/tests/unit/unit_tests --gtest_filter='StatusGolden*'
//   git diff tests/unit/golden/
// (`cat -v` or `less -R` on the *.color.txt files shows the colours.)
#include "golden.hpp"
#include "report/status_json.hpp"
#include "report/status_table.hpp"
#include "snapshot_builder.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <sstream>
#include <string>

namespace withgpu::report {
namespace {

using testing::expect_golden;
using testing::gib;
using testing::make_gpu;
using testing::make_machine;
using testing::make_process;
using testing::uuid_for;

// The moment every board is drawn at, and times relative to it.
constexpr std::int64_t now = 1795341780; // 2026-11-22T10:03:00Z
constexpr std::int64_t minutes_ago(std::int64_t m) {
    return now - 60 * m;
}

gpu::Process process(unsigned pid, double used_gib, std::string user, std::string command) {
    gpu::Process p = make_process(pid, gib(used_gib));
    p.user = std::move(user);
    p.command = std::move(command);
    return p;
}

queue::Ticket ticket(int pid,
                     std::string user,
                     unsigned min_gpus,
                     unsigned max_gpus,
                     std::int64_t since,
                     std::string command) {
    queue::Ticket t;
    t.seq = static_cast<std::uint64_t>(pid);
    t.pid = pid;
    t.user = std::move(user);
    t.command = std::move(command);
    t.since_unix = since;
    t.request.min_gpus = min_gpus;
    t.request.max_gpus = max_gpus;
    return t;
}

struct Board {
    gpu::MachineSnapshot machine;
    gpu::ClaimMap claims;
    std::vector<queue::Ticket> queue;
};

// A busy 8x A100 node: jobs under with-gpu and beside it, one GPU hot, one busy, a queue.
Board a100x8() {
    Board b;
    b.machine = make_machine(8);
    auto& g = b.machine.gpus;
    g[0].memory_used_bytes = gib(65);
    g[0].memory_free_bytes = gib(15);
    g[0].utilization_percent = 97;
    g[0].temperature_c = 71;
    g[0].power_w = 352.4;
    g[0].processes = std::vector<gpu::Process>{
        process(41001, 64.5, "alice", "python train.py --config llama.yaml")};
    g[1].memory_used_bytes = gib(20);
    g[1].utilization_percent = 40;
    g[1].temperature_c = 88; // hot
    g[1].power_w = 210.0;
    g[1].processes = std::vector<gpu::Process>{process(42002, 12, "bob", "jupyter-lab"),
                                               process(42003, 8, "bob", "python eval.py")};
    g[3].memory_used_bytes = gib(0.5);
    g[3].processes = std::vector<gpu::Process>{process(43004, 0.5, "carol", "nvtop")};
    g[5].memory_used_bytes = gib(80);
    g[5].utilization_percent = 100;
    g[5].processes = std::vector<gpu::Process>{process(45005, 80, "dave", "./stress --all")};
    b.claims[uuid_for(0)] =
        gpu::ClaimHolder{41001, 41000, "alice", "python train.py", minutes_ago(133)};
    b.claims[uuid_for(1)] =
        gpu::ClaimHolder{42001, 42000, "bob", "sh -c jupyter-lab", minutes_ago(5)};
    // A claim whose record could not be read: only the lock says it is taken.
    b.claims[uuid_for(6)] = gpu::ClaimHolder{};
    b.queue.push_back(ticket(47001, "erin", 2, 2, minutes_ago(12), "python sweep.py --lr 3e-4"));
    b.queue.push_back(ticket(47002, "frank", 1, 2, now - 40, "torchrun --nproc 2 finetune.py"));
    return b;
}

// A T4 whose driver reports neither utilisation nor power, and will not list processes;
// beside it a GPU whose processes are only partly visible.
Board unknown_metrics() {
    Board b;
    b.machine.driver_version = "470.239.06";
    gpu::GpuSnapshot t4 = make_gpu(0, "Tesla T4", 15.0, 14.6);
    t4.utilization_percent.reset();
    t4.power_w.reset();
    t4.power_limit_w.reset();
    t4.temperature_c.reset();
    t4.processes.reset();
    b.machine.gpus.push_back(t4);
    gpu::GpuSnapshot half = make_gpu(1, "Tesla T4", 15.0, 13.0);
    half.memory_used_bytes.reset();
    half.power_w.reset();
    gpu::Process hidden = make_process(51002);
    hidden.used_memory_bytes.reset();
    half.processes =
        std::vector<gpu::Process>{hidden, process(51001, 2, "gina", "python infer.py")};
    b.machine.gpus.push_back(half);
    return b;
}

// One GPU fell off the bus (and was claimed when it did); the others are fine.
Board lost_gpu() {
    Board b;
    b.machine = make_machine(3);
    b.machine.driver_version = "535.54.03";
    gpu::GpuSnapshot& lost = b.machine.gpus[1];
    lost = gpu::GpuSnapshot{};
    lost.index = 1;
    lost.uuid = uuid_for(1);
    lost.error = "GPU is lost";
    b.claims[uuid_for(1)] =
        gpu::ClaimHolder{61001, 61000, "hank", "python train.py", minutes_ago(62)};
    gpu::GpuSnapshot& gone = b.machine.gpus[2];
    gone = gpu::GpuSnapshot{};
    gone.index = 2;
    gone.error = "nvmlDeviceGetHandleByIndex: Insufficient Permissions (the device node is not "
                 "accessible to this user; check the permissions of /dev/nvidia2)";
    return b;
}

Board no_gpus() {
    Board b;
    b.machine.driver_version = "550.54.15";
    return b;
}

Board long_texts() {
    Board b;
    b.machine.driver_version = "550.54.15";
    b.machine.gpus.push_back(
        make_gpu(0, "NVIDIA GeForce RTX 4090 Laptop GPU Founders Edition Ultra", 16.0, 3.5));
    b.machine.gpus.push_back(make_gpu(1, "NVIDIA H100 80GB HBM3", 79.6, 79.1));
    std::string command = "python -m torch.distributed.run --nproc_per_node 1 train.py";
    for (int i = 0; i < 12; ++i) {
        command += " --option-" + std::to_string(i) + " value-" + std::to_string(i);
    }
    b.machine.gpus[0].processes =
        std::vector<gpu::Process>{process(71001, 12.5, "a-very-long-user-name-indeed", command)};
    b.claims[uuid_for(0)] =
        gpu::ClaimHolder{71001,
                         71000,
                         "a-very-long-user-name-indeed",
                         command,
                         now - std::int64_t{3} * 86400 - std::int64_t{4} * 3600};
    b.queue.push_back(ticket(72001, "someone-with-a-long-name", 1, 1, minutes_ago(1), command));
    return b;
}

Board many_processes() {
    Board b;
    b.machine = make_machine(2);
    std::vector<gpu::Process> processes;
    for (unsigned i = 0; i < 30; ++i) {
        // Sizes out of order, so that the biggest ones must be picked out.
        processes.push_back(process(
            80000 + i, 0.25 * ((i * 7) % 30 + 1), "ivy", "worker --rank " + std::to_string(i)));
    }
    b.machine.gpus[0].processes = processes;
    b.machine.gpus[0].memory_used_bytes = gib(58.1);
    b.machine.gpus[0].utilization_percent = 79; // just below busy
    b.machine.gpus[0].temperature_c = 84;       // just below hot
    return b;
}

struct Case {
    const char* name;
    std::function<Board()> make;
};

const std::vector<Case>& cases() {
    static const std::vector<Case> all{
        {"a100x8", a100x8},
        {"unknown-metrics", unknown_metrics},
        {"lost-gpu", lost_gpu},
        {"no-gpus", no_gpus},
        {"long-texts", long_texts},
        {"many-processes", many_processes},
    };
    return all;
}

std::string render(const Board& b, Style style) {
    return status_table(b.machine, b.claims, b.queue, now, style);
}

// The text with every SGR sequence ("\033[...m") taken out.
std::string strip_sgr(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\033' && i + 1 < text.size() && text[i + 1] == '[') {
            const std::size_t end = text.find('m', i);
            if (end != std::string::npos) {
                i = end;
                continue;
            }
        }
        out += text[i];
    }
    return out;
}

TEST(StatusGoldenTest, PlainAndColourBoards) {
    for (const auto& c : cases()) {
        SCOPED_TRACE(c.name);
        const Board b = c.make();
        expect_golden(std::string("status-") + c.name + ".txt", render(b, Style{false, 100}));
        expect_golden(std::string("status-") + c.name + ".color.txt", render(b, Style{true, 100}));
    }
    // A narrow terminal: the bar and the names give way before the claims do.
    expect_golden("status-a100x8-narrow.txt", render(a100x8(), Style{false, 72}));
}

TEST(StatusGoldenTest, Json) {
    for (const char* name : {"a100x8", "unknown-metrics"}) {
        SCOPED_TRACE(name);
        const Board b = name == std::string("a100x8") ? a100x8() : unknown_metrics();
        expect_golden(std::string("status-") + name + ".json",
                      status_json(b.machine, b.claims, b.queue).dump(2) + "\n");
    }
}

TEST(StatusBoardTest, ColourIsTheOnlyDifferenceAndPlainHasNoEscapes) {
    for (const auto& c : cases()) {
        SCOPED_TRACE(c.name);
        const Board b = c.make();
        for (unsigned width : {40U, 80U, 100U, 160U}) {
            const std::string plain = render(b, Style{false, width});
            EXPECT_EQ(plain.find('\033'), std::string::npos);
            EXPECT_EQ(strip_sgr(render(b, Style{true, width})), plain) << "width " << width;
        }
    }
}

TEST(StatusBoardTest, EveryLineFitsTheWidth) {
    for (const auto& c : cases()) {
        const Board b = c.make();
        for (unsigned width = 72; width <= 160; width += 4) {
            std::istringstream lines(render(b, Style{false, width}));
            std::string line;
            while (std::getline(lines, line)) {
                EXPECT_LE(display_width(line), width) << c.name << " at width " << width << ":\n"
                                                      << line;
            }
        }
    }
}

TEST(StatusBoardTest, ColoursSayWhatTheFiguresMean) {
    const std::string board = render(a100x8(), Style{true, 100});
    EXPECT_NE(board.find("\033[33mclaimed by alice 2h13m\033[0m"), std::string::npos) << board;
    EXPECT_NE(board.find("\033[32mfree\033[0m"), std::string::npos);
    EXPECT_NE(board.find("\033[31m97%\033[0m"), std::string::npos);  // busy
    EXPECT_NE(board.find("\033[31m88°C\033[0m"), std::string::npos); // hot
    EXPECT_EQ(board.find("\033[31m71°C"), std::string::npos);
    const std::string lost = render(lost_gpu(), Style{true, 100});
    EXPECT_NE(lost.find("\033[31merror: GPU is lost\033[0m"), std::string::npos) << lost;
    const std::string unknown = render(unknown_metrics(), Style{true, 100});
    EXPECT_NE(unknown.find("\033[2mn/a\033[0m"), std::string::npos) << unknown;
}

TEST(StatusBoardTest, ControlCharactersInCommandsCannotReachTheTerminal) {
    Board b;
    b.machine = make_machine(1);
    b.machine.gpus[0].processes = std::vector<gpu::Process>{
        process(90001, 1, "mal\033[2Jlory", "evil\n  1  fake row\033[31m\r\x7f")};
    b.queue.push_back(ticket(90002, "x\ty", 1, 1, now, "wait\nfor\033]0;title\007it"));
    const std::string board = render(b, Style{false, 100});
    EXPECT_EQ(board.find('\033'), std::string::npos) << board;
    EXPECT_NE(board.find("evil?  1  fake row?[31m??"), std::string::npos) << board;
    EXPECT_NE(board.find("wait?for?]0;title?it"), std::string::npos) << board;
    EXPECT_EQ(std::count(board.begin(), board.end(), '\n'), 7) << board; // no extra rows
}

TEST(StyleTest, CutAndPadCountColumnsNotBytes) {
    EXPECT_EQ(cut("A100-SXM4-80GB", 20), "A100-SXM4-80GB");
    EXPECT_EQ(cut("abcdef", 4), "abc…");
    EXPECT_EQ(cut("°°°°°", 3), "°°…");
    EXPECT_EQ(cut("abc", 0), "");
    EXPECT_EQ(display_width("71°C [██░░]"), 11U);
    EXPECT_EQ(pad_right("71°C", 6), "71°C  ");
    EXPECT_EQ(pad_left("71°C", 6), "  71°C");
    EXPECT_EQ(paint("free", Tone::green, Style{false, 80}), "free");
    EXPECT_EQ(paint("free", Tone::green, Style{true, 80}), "\033[32mfree\033[0m");
}

} // namespace
} // namespace withgpu::report
