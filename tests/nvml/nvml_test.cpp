// The NVML reader against the simulator, loaded by explicit path. Each test writes its own
// machine file and names it in WITH_GPU_SIM_MACHINE before opening. One test also joins the
// processes with /proc as app/ does.
#include "core/machine.hpp"
#include "nvml/nvml.hpp"
#include "procfs/process_info.hpp"
#include "support/machine_file.hpp"
#include "support/nvml_snapshot.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace withgpu::nvml {
namespace {

using gpu::Process;
using nlohmann::json;

constexpr std::uint64_t mib = 1024ULL * 1024ULL;

json make_gpu(int n) {
    const std::string digit = std::to_string(n);
    return json{
        {"name", "NVIDIA A100-SXM4-80GB"},
        {"uuid", "GPU-" + digit + "1234567-89ab-cdef-0123-456789abcdef"},
        {"pci_bus_id", "00000000:0" + digit + ":00.0"},
        {"memory_total_mib", 81920},
        {"memory_reserved_mib", 512},
        {"memory_other_used_mib", 100},
        {"utilization_percent", 37},
        {"memory_utilization_percent", 12},
        {"temperature_c", 45},
        {"power_mw", 123456},
        {"power_limit_mw", 400000},
        {"processes", json::array()},
    };
}

json make_process(unsigned pid, json used_memory_mib, const char* type = "compute") {
    return json{{"pid", pid}, {"used_memory_mib", std::move(used_memory_mib)}, {"type", type}};
}

json make_machine(json gpus) {
    return json{{"driver_version", "550.54.15"}, {"gpus", std::move(gpus)}};
}

const Process* find_process(const gpu::GpuSnapshot& gpu, unsigned pid) {
    if (!gpu.processes) {
        return nullptr;
    }
    for (const Process& process : *gpu.processes) {
        if (process.pid == pid) {
            return &process;
        }
    }
    return nullptr;
}

class NvmlSim : public ::testing::Test {
  protected:
    void write_machine(const json& machine) {
        withgpu::testing::write_machine_file(machine_path(), machine);
    }

    [[nodiscard]] std::filesystem::path machine_path() const {
        return m_dir.path() / "machine.json";
    }

    static Result<Nvml> open_sim() { return Nvml::open(WITH_GPU_SIM_LIBRARY); }

    // Opens the simulator on `machine` and takes one snapshot, which must succeed.
    gpu::MachineSnapshot snapshot_of(const json& machine) {
        write_machine(machine);
        return withgpu::testing::snapshot_through(WITH_GPU_SIM_LIBRARY);
    }

    withgpu::testing::TempDir m_dir;
};

TEST_F(NvmlSim, ReadsMinorNumbersAndLocalCpus) {
    json first = make_gpu(0); // no minor_number, no cpu_affinity: the defaults
    json second = make_gpu(1);
    second["minor_number"] = 7;
    second["cpu_affinity"] = "0-2,64,66-67";
    const auto machine = snapshot_of(make_machine({first, second}));
    ASSERT_EQ(machine.gpus.size(), 2U);
    EXPECT_EQ(machine.gpus[0].minor_number, 0U);
    EXPECT_EQ(machine.gpus[0].local_cpus, std::nullopt); // NOT_SUPPORTED: unknown
    EXPECT_EQ(machine.gpus[1].minor_number, 7U);
    EXPECT_EQ(machine.gpus[1].local_cpus, (std::vector<unsigned>{0, 1, 2, 64, 66, 67}));
}

TEST_F(NvmlSim, ReadsEveryFigure) {
    json first = make_gpu(0);
    first["processes"] = json::array({make_process(4242, 1000), make_process(4343, 2000)});
    json second = make_gpu(1);
    second["name"] = "NVIDIA H100 80GB HBM3";
    second["utilization_percent"] = 0;
    second["temperature_c"] = 71;
    second["power_mw"] = 700000;
    second["power_limit_mw"] = 700000;

    const auto machine = snapshot_of(make_machine({first, second}));
    EXPECT_EQ(machine.driver_version, "550.54.15");
    ASSERT_EQ(machine.gpus.size(), 2U);

    const auto& a = machine.gpus[0];
    EXPECT_EQ(a.index, 0U);
    EXPECT_FALSE(a.error.has_value()) << a.error.value_or("");
    EXPECT_EQ(a.uuid, "GPU-01234567-89ab-cdef-0123-456789abcdef");
    EXPECT_EQ(a.name, "NVIDIA A100-SXM4-80GB");
    EXPECT_EQ(a.pci_bus_id, "00000000:00:00.0");
    // _v2 semantics: used = processes + other, reserved is neither used nor free.
    EXPECT_EQ(a.memory_total_bytes, 81920 * mib);
    EXPECT_EQ(a.memory_used_bytes, (1000 + 2000 + 100) * mib);
    EXPECT_EQ(a.memory_free_bytes, (81920 - 512 - 3100) * mib);
    EXPECT_EQ(a.utilization_percent, 37U);
    EXPECT_EQ(a.temperature_c, 45U);
    ASSERT_TRUE(a.power_w.has_value());
    EXPECT_DOUBLE_EQ(*a.power_w, 123.456);
    ASSERT_TRUE(a.power_limit_w.has_value());
    EXPECT_DOUBLE_EQ(*a.power_limit_w, 400.0);
    ASSERT_TRUE(a.processes.has_value());
    ASSERT_EQ(a.processes->size(), 2U);
    const Process* p = find_process(a, 4242);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->kind, Process::Kind::compute);
    EXPECT_EQ(p->used_memory_bytes, 1000 * mib);
    p = find_process(a, 4343);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->used_memory_bytes, 2000 * mib);

    const auto& b = machine.gpus[1];
    EXPECT_EQ(b.index, 1U);
    EXPECT_FALSE(b.error.has_value());
    EXPECT_EQ(b.name, "NVIDIA H100 80GB HBM3");
    EXPECT_EQ(b.pci_bus_id, "00000000:01:00.0");
    EXPECT_EQ(b.memory_used_bytes, 100 * mib);
    EXPECT_EQ(b.utilization_percent, 0U); // a real 0, not unknown
    EXPECT_EQ(b.temperature_c, 71U);
    EXPECT_EQ(b.power_w, 700.0);
    ASSERT_TRUE(b.processes.has_value());
    EXPECT_TRUE(b.processes->empty());
}

class MemoryFallback : public NvmlSim, public ::testing::WithParamInterface<const char*> {};

TEST_P(MemoryFallback, V1CountsReservedMemoryAsUsed) {
    json gpu = make_gpu(0);
    gpu["processes"] = json::array({make_process(4242, 1000)});
    gpu["faults"] = json{{"nvmlDeviceGetMemoryInfo_v2", GetParam()}};

    const auto machine = snapshot_of(make_machine({gpu}));
    ASSERT_EQ(machine.gpus.size(), 1U);
    const auto& g = machine.gpus[0];
    EXPECT_FALSE(g.error.has_value());
    EXPECT_EQ(g.memory_total_bytes, 81920 * mib);
    EXPECT_EQ(g.memory_used_bytes, (1000 + 100 + 512) * mib);
    EXPECT_EQ(g.memory_free_bytes, (81920 - 512 - 1100) * mib);
}

INSTANTIATE_TEST_SUITE_P(RefusedV2,
                         MemoryFallback,
                         ::testing::Values("FUNCTION_NOT_FOUND", "NOT_SUPPORTED"));

TEST_F(NvmlSim, UnsupportedMetricsAreUnknownNotZero) {
    json gpu = make_gpu(0);
    gpu["utilization_percent"] = nullptr;
    gpu["temperature_c"] = nullptr;
    gpu["power_mw"] = nullptr;
    gpu["power_limit_mw"] = nullptr;
    json faulted = make_gpu(1);
    faulted["faults"] = json{{"nvmlDeviceGetMemoryInfo_v2", "NO_PERMISSION"},
                             {"nvmlDeviceGetMemoryInfo", "NO_PERMISSION"},
                             {"nvmlDeviceGetTemperature", "UNKNOWN"},
                             {"nvmlDeviceGetComputeRunningProcesses_v3", "NO_PERMISSION"}};

    const auto machine = snapshot_of(make_machine({gpu, faulted}));
    ASSERT_EQ(machine.gpus.size(), 2U);
    const auto& g = machine.gpus[0];
    EXPECT_FALSE(g.error.has_value());
    EXPECT_FALSE(g.utilization_percent.has_value());
    EXPECT_FALSE(g.temperature_c.has_value());
    EXPECT_FALSE(g.power_w.has_value());
    EXPECT_FALSE(g.power_limit_w.has_value());
    EXPECT_EQ(g.memory_total_bytes, 81920 * mib);

    const auto& f = machine.gpus[1];
    EXPECT_FALSE(f.error.has_value()) << "a refused metric is not a broken GPU";
    EXPECT_FALSE(f.memory_total_bytes.has_value());
    EXPECT_FALSE(f.memory_used_bytes.has_value());
    EXPECT_FALSE(f.memory_free_bytes.has_value());
    EXPECT_FALSE(f.temperature_c.has_value());
    EXPECT_FALSE(f.processes.has_value()) << "an unreadable list is unknown, not empty";
    EXPECT_EQ(f.utilization_percent, 37U);
    EXPECT_EQ(f.uuid, "GPU-11234567-89ab-cdef-0123-456789abcdef");
}

TEST_F(NvmlSim, LostGpuIsReportedAndTheOthersAreIntact) {
    json lost = make_gpu(1);
    lost["lost"] = true;
    const auto machine = snapshot_of(make_machine({make_gpu(0), lost, make_gpu(2)}));
    ASSERT_EQ(machine.gpus.size(), 3U);

    EXPECT_EQ(machine.gpus[1].index, 1U);
    EXPECT_EQ(machine.gpus[1].error, "GPU is lost");
    EXPECT_FALSE(machine.gpus[1].memory_total_bytes.has_value());
    EXPECT_FALSE(machine.gpus[1].processes.has_value());

    for (const unsigned i : {0U, 2U}) {
        const auto& g = machine.gpus[i];
        EXPECT_EQ(g.index, i);
        EXPECT_FALSE(g.error.has_value());
        EXPECT_EQ(g.uuid, "GPU-" + std::to_string(i) + "1234567-89ab-cdef-0123-456789abcdef");
        EXPECT_EQ(g.memory_used_bytes, 100 * mib);
        EXPECT_EQ(g.temperature_c, 45U);
        EXPECT_TRUE(g.processes.has_value());
    }
}

TEST_F(NvmlSim, GpuThatCannotBeOpenedIsReportedAndTheOthersAreIntact) {
    json forbidden = make_gpu(0);
    forbidden["faults"] = json{{"nvmlDeviceGetHandleByIndex_v2", "NO_PERMISSION"}};
    const auto machine = snapshot_of(make_machine({forbidden, make_gpu(1)}));
    ASSERT_EQ(machine.gpus.size(), 2U);

    EXPECT_EQ(machine.gpus[0].index, 0U);
    EXPECT_EQ(machine.gpus[0].error, "no permission to open this GPU");
    EXPECT_TRUE(machine.gpus[0].uuid.empty());

    EXPECT_FALSE(machine.gpus[1].error.has_value());
    EXPECT_EQ(machine.gpus[1].uuid, "GPU-11234567-89ab-cdef-0123-456789abcdef");
    EXPECT_EQ(machine.gpus[1].memory_total_bytes, 81920 * mib);
}

TEST_F(NvmlSim, GpuWithoutUuidIsReportedWithWhatCouldBeRead) {
    json gpu = make_gpu(0);
    gpu["faults"] = json{{"nvmlDeviceGetUUID", "NO_PERMISSION"}};
    const auto machine = snapshot_of(make_machine({gpu}));
    ASSERT_EQ(machine.gpus.size(), 1U);
    const auto& g = machine.gpus[0];
    ASSERT_TRUE(g.error.has_value());
    EXPECT_NE(g.error->find("UUID"), std::string::npos) << *g.error;
    EXPECT_TRUE(g.uuid.empty());
    EXPECT_EQ(g.name, "NVIDIA A100-SXM4-80GB");
    EXPECT_EQ(g.pci_bus_id, "00000000:00:00.0");
}

// Many processes, each with its own figure, so a wrong stride or a short read shows.
json many_processes(unsigned count) {
    json processes = json::array();
    for (unsigned i = 0; i < count; ++i) {
        processes.push_back(make_process(10000 + i, 100 + i));
    }
    return processes;
}

void expect_many_processes(const gpu::GpuSnapshot& g, unsigned count) {
    EXPECT_FALSE(g.error.has_value());
    ASSERT_TRUE(g.processes.has_value());
    ASSERT_EQ(g.processes->size(), count);
    for (unsigned i = 0; i < count; ++i) {
        const Process* p = find_process(g, 10000 + i);
        ASSERT_NE(p, nullptr) << "pid " << 10000 + i;
        EXPECT_EQ(p->used_memory_bytes, (100 + i) * mib) << "pid " << 10000 + i;
        EXPECT_EQ(p->kind, Process::Kind::compute);
    }
}

TEST_F(NvmlSim, SizeQueryLoopReadsFortyProcesses) {
    json gpu = make_gpu(0);
    gpu["processes"] = many_processes(40);
    const auto machine = snapshot_of(make_machine({gpu}));
    ASSERT_EQ(machine.gpus.size(), 1U);
    expect_many_processes(machine.gpus[0], 40);
}

class ProcessStride : public NvmlSim, public ::testing::WithParamInterface<unsigned> {};

TEST_P(ProcessStride, WideV3EntriesAreReadAtTheirStride) {
    json gpu = make_gpu(0);
    gpu["process_stride"] = 32;
    gpu["processes"] = many_processes(GetParam());
    json narrow = make_gpu(1);
    narrow["process_stride"] = 24;
    narrow["processes"] = many_processes(GetParam());

    const auto machine = snapshot_of(make_machine({gpu, narrow}));
    ASSERT_EQ(machine.gpus.size(), 2U);
    expect_many_processes(machine.gpus[0], GetParam());
    expect_many_processes(machine.gpus[1], GetParam());
}

INSTANTIATE_TEST_SUITE_P(Counts, ProcessStride, ::testing::Values(1U, 2U, 7U, 40U));

TEST_F(NvmlSim, OlderProcessListAbisAreUsedWhenNewerOnesRefuse) {
    json no_v3 = make_gpu(0);
    no_v3["process_stride"] = 32; // must not matter once _v3 is out of the picture
    no_v3["processes"] = many_processes(9);
    no_v3["faults"] = json{{"nvmlDeviceGetComputeRunningProcesses_v3", "FUNCTION_NOT_FOUND"}};
    json only_v1 = make_gpu(1);
    only_v1["processes"] = many_processes(9);
    only_v1["faults"] = json{{"nvmlDeviceGetComputeRunningProcesses_v3", "FUNCTION_NOT_FOUND"},
                             {"nvmlDeviceGetComputeRunningProcesses_v2", "FUNCTION_NOT_FOUND"}};

    const auto machine = snapshot_of(make_machine({no_v3, only_v1}));
    ASSERT_EQ(machine.gpus.size(), 2U);
    expect_many_processes(machine.gpus[0], 9);
    expect_many_processes(machine.gpus[1], 9);
}

TEST_F(NvmlSim, ComputeAndGraphicsProcessesAreMergedByPid) {
    json gpu = make_gpu(0);
    gpu["processes"] = json::array({
        make_process(100, 1000, "compute"),
        make_process(200, 300, "graphics"),
        make_process(300, 500, "both"),
        make_process(500, nullptr, "compute"),
    });
    const auto machine = snapshot_of(make_machine({gpu}));
    ASSERT_EQ(machine.gpus.size(), 1U);
    const auto& g = machine.gpus[0];
    ASSERT_TRUE(g.processes.has_value());
    EXPECT_EQ(g.processes->size(), 4U);

    const Process* p = find_process(g, 100);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->kind, Process::Kind::compute);
    EXPECT_EQ(p->used_memory_bytes, 1000 * mib);

    p = find_process(g, 200);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->kind, Process::Kind::graphics);
    EXPECT_EQ(p->used_memory_bytes, 300 * mib);

    p = find_process(g, 300);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->kind, Process::Kind::compute_and_graphics);
    EXPECT_EQ(p->used_memory_bytes, 500 * mib);

    p = find_process(g, 500);
    ASSERT_NE(p, nullptr);
    EXPECT_FALSE(p->used_memory_bytes.has_value()) << "NVML_VALUE_NOT_AVAILABLE is unknown";
}

TEST_F(NvmlSim, ProcessesCarryUserAndCommandFromProc) {
    const auto self = static_cast<unsigned>(::getpid());
    json gpu = make_gpu(0);
    gpu["processes"] = json::array({make_process(self, 1234)});
    auto machine = snapshot_of(make_machine({gpu}));
    ASSERT_EQ(machine.gpus.size(), 1U);
    const Process* p = find_process(machine.gpus[0], self);
    ASSERT_NE(p, nullptr);
    // NVML knows the pid; whose it is, is for /proc to say, and app/ joins the two.
    EXPECT_FALSE(p->user.has_value());
    EXPECT_FALSE(p->command.has_value());

    core::add_process_details(machine);
    p = find_process(machine.gpus[0], self);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->used_memory_bytes, 1234 * mib);
    EXPECT_EQ(p->user, procfs::user_name(::getuid()));
    ASSERT_TRUE(p->command.has_value());
    EXPECT_NE(p->command->find("nvml_tests"), std::string::npos) << *p->command;
}

TEST_F(NvmlSim, SecondSnapshotSeesTheRewrittenMachine) {
    json gpu = make_gpu(0);
    gpu["processes"] = json::array({make_process(4242, 1000)});
    write_machine(make_machine({gpu}));
    auto nvml = open_sim();
    ASSERT_TRUE(nvml) << nvml.error().message;

    auto before = nvml->snapshot();
    ASSERT_TRUE(before) << before.error().message;
    ASSERT_EQ(before->gpus.size(), 1U);
    EXPECT_EQ(before->gpus[0].memory_used_bytes, 1100 * mib);
    ASSERT_TRUE(before->gpus[0].processes.has_value());
    EXPECT_EQ(before->gpus[0].processes->size(), 1U);

    gpu["processes"] = many_processes(12);
    gpu["temperature_c"] = 80;
    write_machine(make_machine({gpu, make_gpu(1)}));

    auto after = nvml->snapshot();
    ASSERT_TRUE(after) << after.error().message;
    ASSERT_EQ(after->gpus.size(), 2U);
    EXPECT_EQ(after->gpus[0].temperature_c, 80U);
    expect_many_processes(after->gpus[0], 12);
    EXPECT_EQ(after->gpus[1].uuid, "GPU-11234567-89ab-cdef-0123-456789abcdef");
}

TEST_F(NvmlSim, ZeroGpusIsAnEmptySnapshot) {
    const auto machine = snapshot_of(make_machine(json::array()));
    EXPECT_EQ(machine.driver_version, "550.54.15");
    EXPECT_TRUE(machine.gpus.empty());
}

TEST_F(NvmlSim, SessionsAreIndependentAndMovable) {
    write_machine(make_machine({make_gpu(0)}));
    auto first = open_sim();
    ASSERT_TRUE(first) << first.error().message;
    auto second = open_sim();
    ASSERT_TRUE(second) << second.error().message;

    // Dropping one session must not shut NVML down under the other.
    { const Nvml dropped = std::move(*first); }
    Nvml moved = std::move(*second);
    EXPECT_EQ(moved.library(), WITH_GPU_SIM_LIBRARY);
    auto snapshot = moved.snapshot();
    ASSERT_TRUE(snapshot) << snapshot.error().message;
    ASSERT_EQ(snapshot->gpus.size(), 1U);
    EXPECT_FALSE(snapshot->gpus[0].error.has_value());
}

TEST_F(NvmlSim, CallLogNamesEveryCallWhileItIsSet) {
    // WITH_GPU_SIM_CALL_LOG (docs/simulator.md): one line per entry point called.
    const std::filesystem::path log = m_dir.path() / "calls.log";
    ASSERT_EQ(::setenv("WITH_GPU_SIM_CALL_LOG", log.c_str(), 1), 0);
    const auto machine = snapshot_of(make_machine({make_gpu(0), make_gpu(1)}));
    ASSERT_EQ(::unsetenv("WITH_GPU_SIM_CALL_LOG"), 0);
    ASSERT_EQ(machine.gpus.size(), 2U);

    std::ifstream in(log);
    std::vector<std::string> calls;
    for (std::string line; std::getline(in, line);) {
        calls.push_back(line);
    }
    ASSERT_FALSE(calls.empty());
    EXPECT_EQ(calls.front(), "nvmlInit_v2");
    EXPECT_EQ(calls.back(), "nvmlShutdown");
    for (const auto& call : calls) {
        EXPECT_EQ(call.rfind("nvml", 0), 0U) << call;
    }
    const auto uuid_calls = std::count(calls.begin(), calls.end(), "nvmlDeviceGetUUID");
    EXPECT_EQ(uuid_calls, 2); // once per GPU

    // Unset: nothing more is written.
    const auto size = std::filesystem::file_size(log);
    snapshot_of(make_machine({make_gpu(0)}));
    EXPECT_EQ(std::filesystem::file_size(log), size);
}

// A launch reads only the figures its filters use (issue 9): the others are never asked of
// the driver and stay unknown; identity, memory and processes are always read.
TEST_F(NvmlSim, OnlyTheFiguresAskedForAreRead) {
    json busy = make_gpu(0);
    busy["minor_number"] = 3;
    busy["processes"] = json::array({make_process(4242, 1024)});
    write_machine(make_machine({busy}));
    const std::filesystem::path log = m_dir.path() / "calls.log";
    ASSERT_EQ(::setenv("WITH_GPU_SIM_CALL_LOG", log.c_str(), 1), 0);
    auto nvml = open_sim();
    ASSERT_TRUE(nvml) << nvml.error().message;
    gpu::Figures temperature_only = gpu::Figures::none();
    temperature_only.temperature = true;
    const auto few = nvml->snapshot(temperature_only);
    ASSERT_EQ(::unsetenv("WITH_GPU_SIM_CALL_LOG"), 0);
    ASSERT_TRUE(few) << few.error().message;
    EXPECT_EQ(few->figures, temperature_only);
    ASSERT_EQ(few->gpus.size(), 1U);
    const auto& g = few->gpus[0];
    EXPECT_EQ(g.uuid, "GPU-01234567-89ab-cdef-0123-456789abcdef");
    EXPECT_EQ(g.name, "NVIDIA A100-SXM4-80GB");
    EXPECT_EQ(g.pci_bus_id, "00000000:00:00.0");
    EXPECT_TRUE(g.memory_free_bytes.has_value());
    ASSERT_TRUE(g.processes.has_value());
    EXPECT_EQ(g.processes->size(), 1U);
    EXPECT_EQ(g.temperature_c, 45U);
    EXPECT_FALSE(g.utilization_percent.has_value());
    EXPECT_FALSE(g.power_w.has_value());
    EXPECT_FALSE(g.power_limit_w.has_value());
    EXPECT_FALSE(g.minor_number.has_value());
    EXPECT_FALSE(g.local_cpus.has_value());

    std::ifstream in(log);
    std::vector<std::string> calls;
    for (std::string line; std::getline(in, line);) {
        calls.push_back(line);
    }
    for (const char* never : {"nvmlDeviceGetUtilizationRates",
                              "nvmlDeviceGetPowerUsage",
                              "nvmlDeviceGetEnforcedPowerLimit",
                              "nvmlDeviceGetMinorNumber",
                              "nvmlDeviceGetCpuAffinity"}) {
        EXPECT_EQ(std::count(calls.begin(), calls.end(), never), 0) << never;
    }
    EXPECT_EQ(std::count(calls.begin(), calls.end(), "nvmlDeviceGetTemperature"), 1);

    const auto all = nvml->snapshot();
    ASSERT_TRUE(all) << all.error().message;
    EXPECT_EQ(all->figures, gpu::Figures::all());
    EXPECT_EQ(all->gpus[0].utilization_percent, 37U);
    EXPECT_EQ(all->gpus[0].power_limit_w, 400.0);
    EXPECT_EQ(all->gpus[0].minor_number, 3U);
}

TEST_F(NvmlSim, InitErrorIsReportedWithTheDriversWords) {
    json machine = make_machine({make_gpu(0)});
    machine["init_error"] = "DRIVER_NOT_LOADED";
    write_machine(machine);
    const auto nvml = open_sim();
    ASSERT_FALSE(nvml);
    EXPECT_EQ(nvml.error().kind, ErrorKind::driver);
    EXPECT_NE(nvml.error().message.find("NVML could not be initialised: Driver Not Loaded"),
              std::string::npos)
        << nvml.error().message;
    EXPECT_NE(nvml.error().hint.find("driver"), std::string::npos) << nvml.error().hint;
}

TEST_F(NvmlSim, UnsetMachineFileMeansNoDriver) {
    ASSERT_EQ(::unsetenv("WITH_GPU_SIM_MACHINE"), 0);
    const auto nvml = open_sim();
    ASSERT_FALSE(nvml);
    EXPECT_EQ(nvml.error().kind, ErrorKind::driver);
    EXPECT_NE(nvml.error().message.find("NVML could not be initialised: Driver Not Loaded"),
              std::string::npos)
        << nvml.error().message;
}

TEST(NvmlOpen, MissingLibraryIsNamedWithAHint) {
    const withgpu::testing::TempDir dir;
    const std::string path = (dir.path() / "nowhere" / "libnvidia-ml.so.1").string();
    const auto nvml = Nvml::open(path);
    ASSERT_FALSE(nvml);
    const Error& error = nvml.error();
    EXPECT_EQ(error.kind, ErrorKind::driver);
    EXPECT_EQ(error.message.rfind("cannot load NVML (" + path + "): ", 0), 0U) << error.message;
    EXPECT_NE(error.message.find("No such file"), std::string::npos) << error.message;
    EXPECT_NE(error.hint.find("NVIDIA driver"), std::string::npos) << error.hint;
    EXPECT_NE(error.hint.find("--nvml-library PATH"), std::string::npos) << error.hint;
    EXPECT_NE(error.hint.find("WITH_GPU_NVML_LIBRARY"), std::string::npos) << error.hint;
    EXPECT_NE(error.hint.find("docs/simulator.md"), std::string::npos) << error.hint;
}

TEST(NvmlOpen, LibraryWithoutNvmlSymbolsIsRejected) {
    const auto nvml = Nvml::open("libm.so.6");
    ASSERT_FALSE(nvml);
    EXPECT_EQ(nvml.error().kind, ErrorKind::driver);
    EXPECT_NE(nvml.error().message.find("libm.so.6"), std::string::npos) << nvml.error().message;
    EXPECT_NE(nvml.error().message.find("nvmlInit_v2"), std::string::npos) << nvml.error().message;
}

TEST_F(NvmlSim, DefaultNameIsFoundThroughTheLoaderSearch) {
    // LD_LIBRARY_PATH is read at process start, so ctest provides it (tests/nvml/CMakeLists.txt).
    const char* search_path = std::getenv("LD_LIBRARY_PATH");
    const std::string sim_dir = std::filesystem::path(WITH_GPU_SIM_LIBRARY).parent_path().string();
    if (search_path == nullptr || std::string(search_path).find(sim_dir) == std::string::npos) {
        GTEST_SKIP() << "run through ctest, which puts the simulator on LD_LIBRARY_PATH";
    }
    write_machine(make_machine({make_gpu(0)}));
    const auto nvml = Nvml::open();
    ASSERT_TRUE(nvml) << nvml.error().message;
    EXPECT_EQ(nvml->library(), "libnvidia-ml.so.1");
    const auto snapshot = nvml->snapshot();
    ASSERT_TRUE(snapshot) << snapshot.error().message;
    EXPECT_EQ(snapshot->gpus.size(), 1U);
}

} // namespace
} // namespace withgpu::nvml
