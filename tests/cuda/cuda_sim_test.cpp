// The CUDA driver simulator, called directly: what it answers, and that memory taken through
// it shows in the NVML simulator as a compute process of the caller, until freed or dead.
#include "cuda/abi.hpp"
#include "cuda/library.hpp"
#include "sim_machine.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstring>
#include <dlfcn.h>
#include <fstream>
#include <string>
#include <thread>

namespace withgpu::testing {
namespace {

using nlohmann::json;

// The simulator's entry points, looked up once as the loader does; the library stays loaded.
const cuda::detail::Api& sim() {
    static const cuda::detail::Api api = [] {
        cuda::detail::Api resolved;
        void* handle = ::dlopen(WITH_GPU_CUDA_SIM_LIBRARY, RTLD_NOW | RTLD_LOCAL);
        EXPECT_NE(handle, nullptr) << ::dlerror();
        EXPECT_TRUE(cuda::detail::resolve_api(handle, resolved).empty());
        return resolved;
    }();
    return api;
}

// Device by bus id, primary context retained and made current: 0, or the failing CUresult.
CUresult open_device(const char* bus_id, CUdevice& device) {
    CUcontext context = nullptr;
    CUresult rc = sim().init(0);
    if (rc == CUDA_SUCCESS) {
        rc = sim().device_by_bus_id(&device, bus_id);
    }
    if (rc == CUDA_SUCCESS) {
        rc = sim().retain(&context, device);
    }
    return rc == CUDA_SUCCESS ? sim().set_current(context) : rc;
}

// What a HoldingChild runs to hold `bytes` on a GPU: 0 once it holds them.
auto holding(const char* bus_id, std::uint64_t bytes) {
    return [=] {
        CUdevice device = -1;
        CUdeviceptr pointer = 0;
        return open_device(bus_id, device) == CUDA_SUCCESS &&
                       sim().allocate(&pointer, bytes) == CUDA_SUCCESS
                   ? 0
                   : 1;
    };
}

class CudaSimTest : public SimMachine {};

TEST_F(CudaSimTest, AllocationShowsInNvmlAsThisProcessUntilFreed) {
    write_machine(machine_of({cuda_gpu(1), cuda_gpu(2)}));
    CUdevice device = -1;
    ASSERT_EQ(open_device("0000:02:00.0", device), CUDA_SUCCESS);
    EXPECT_EQ(device, 1);
    EXPECT_EQ(nvml_memory_of(1, ::getpid()), 300 * mib); // the context alone
    EXPECT_EQ(nvml_memory_of(0, ::getpid()), std::nullopt);

    CUdeviceptr pointer = 0;
    ASSERT_EQ(sim().allocate(&pointer, 4 * gib), CUDA_SUCCESS);
    EXPECT_NE(pointer, 0U);
    EXPECT_EQ(nvml_memory_of(1, ::getpid()), 4 * gib + 300 * mib);
    EXPECT_EQ(nvml_used(1), 4 * gib + 300 * mib);

    ASSERT_EQ(sim().free(pointer), CUDA_SUCCESS);
    EXPECT_EQ(nvml_memory_of(1, ::getpid()), 300 * mib);
    EXPECT_EQ(sim().free(pointer), CUDA_ERROR_INVALID_VALUE); // freed already

    ASSERT_EQ(sim().release(device), CUDA_SUCCESS);
    EXPECT_EQ(nvml_memory_of(1, ::getpid()), std::nullopt);
    EXPECT_EQ(nvml_used(1), 0U);
    EXPECT_FALSE(std::filesystem::exists(m_dir.path() / "machine.json.d" /
                                         ("cuda-" + std::to_string(::getpid()) + ".json")));
}

TEST_F(CudaSimTest, StateFileHoldsBytesPerBusIdAndCanBeMoved) {
    const auto state = m_dir.path() / "elsewhere";
    ASSERT_EQ(::setenv("WITH_GPU_SIM_STATE", state.c_str(), 1), 0);
    write_machine(machine_of({cuda_gpu(7)}));
    CUdevice device = -1;
    ASSERT_EQ(open_device("0000:07:00.0", device), CUDA_SUCCESS);
    CUdeviceptr pointer = 0;
    ASSERT_EQ(sim().allocate(&pointer, 1), CUDA_SUCCESS); // rounded up to 2 MiB

    std::ifstream in(state / ("cuda-" + std::to_string(::getpid()) + ".json"));
    ASSERT_TRUE(in.good());
    const json file = json::parse(in);
    EXPECT_EQ(file.at("pid"), ::getpid());
    EXPECT_GT(file.at("start_time").get<unsigned long long>(), 0U);
    EXPECT_EQ(file.at("memory_bytes"), (json{{"00000000:07:00.0", 302 * mib}}));
    EXPECT_EQ(nvml_memory_of(0, ::getpid()), 302 * mib);
    EXPECT_FALSE(std::filesystem::exists(m_dir.path() / "machine.json.d"));

    // Rewriting the machine file leaves the held memory alone.
    json changed = machine_of({cuda_gpu(7)});
    changed["gpus"][0]["utilization_percent"] = 50;
    write_machine(changed);
    EXPECT_EQ(nvml_memory_of(0, ::getpid()), 302 * mib);

    ASSERT_EQ(sim().release(device), CUDA_SUCCESS); // frees the allocation with the context
    EXPECT_EQ(nvml_memory_of(0, ::getpid()), std::nullopt);
}

TEST_F(CudaSimTest, MemoryInfoCountsEveryoneAndOutOfMemoryBeyondFree) {
    json gpu = cuda_gpu(3, 16384);
    gpu["memory_other_used_mib"] = 1000;
    gpu["processes"] = json::array({{{"pid", 4000001}, {"used_memory_mib", 2000}}});
    write_machine(machine_of({gpu}));
    CUdevice device = -1;
    ASSERT_EQ(open_device("0000:03:00.0", device), CUDA_SUCCESS);

    std::size_t free = 0;
    std::size_t total = 0;
    ASSERT_EQ(sim().memory_info(&free, &total), CUDA_SUCCESS);
    EXPECT_EQ(total, (16384 - 512) * mib);
    EXPECT_EQ(free, (16384 - 512 - 1000 - 2000 - 300) * mib);

    CUdeviceptr pointer = 0;
    EXPECT_EQ(sim().allocate(&pointer, free + 1), CUDA_ERROR_OUT_OF_MEMORY);
    ASSERT_EQ(sim().allocate(&pointer, free), CUDA_SUCCESS); // exactly what is free
    CUdeviceptr more = 0;
    EXPECT_EQ(sim().allocate(&more, 1), CUDA_ERROR_OUT_OF_MEMORY);
    ASSERT_EQ(sim().memory_info(&free, &total), CUDA_SUCCESS);
    EXPECT_EQ(free, 0U);
    EXPECT_EQ(sim().allocate(&more, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_EQ(sim().release(device), CUDA_SUCCESS);
}

TEST_F(CudaSimTest, AnotherProcessesMemoryIsNotFree) {
    write_machine(machine_of({cuda_gpu(1, 16384)}));
    HoldingChild child(holding("0000:01:00.0", 10 * gib));
    ASSERT_TRUE(child.ready());
    CUdevice device = -1;
    ASSERT_EQ(open_device("0000:01:00.0", device), CUDA_SUCCESS);
    std::size_t free = 0;
    std::size_t total = 0;
    ASSERT_EQ(sim().memory_info(&free, &total), CUDA_SUCCESS);
    EXPECT_EQ(free, (16384 - 512 - 2 * 300) * mib - 10 * gib);
    CUdeviceptr pointer = 0;
    EXPECT_EQ(sim().allocate(&pointer, 6 * gib), CUDA_ERROR_OUT_OF_MEMORY);
    ASSERT_EQ(sim().release(device), CUDA_SUCCESS);
}

TEST_F(CudaSimTest, KilledProcessMemoryVanishesFromNvml) {
    write_machine(machine_of({cuda_gpu(1)}));
    HoldingChild child(holding("0000:01:00.0", 8 * gib));
    ASSERT_TRUE(child.ready());
    EXPECT_EQ(nvml_memory_of(0, child.pid()), 8 * gib + 300 * mib);

    child.kill_and_await_zombie(); // not reaped yet: the pid still exists
    EXPECT_EQ(nvml_memory_of(0, child.pid()), std::nullopt);
    EXPECT_EQ(nvml_used(0), 0U);
}

TEST_F(CudaSimTest, BusIdsAreComparedAsNumbers) {
    json far = cuda_gpu(2);
    far["pci_bus_id"] = "0001A000:C1:1F.0";
    write_machine(machine_of({cuda_gpu(1), far}));
    ASSERT_EQ(sim().init(0), CUDA_SUCCESS);
    CUdevice device = -1;
    for (const char* id :
         {"0000:01:00.0", "00000000:01:00.0", "0:1:0.0", "01:00.0", "0000:01:00"}) {
        device = -1;
        EXPECT_EQ(sim().device_by_bus_id(&device, id), CUDA_SUCCESS) << id;
        EXPECT_EQ(device, 0) << id;
    }
    for (const char* id : {"0001a000:c1:1f.0", "1A000:C1:1F.0", "0001A000:C1:1F"}) {
        device = -1;
        EXPECT_EQ(sim().device_by_bus_id(&device, id), CUDA_SUCCESS) << id;
        EXPECT_EQ(device, 1) << id;
    }
    EXPECT_EQ(sim().device_by_bus_id(&device, "0000:99:00.0"), CUDA_ERROR_INVALID_DEVICE);
    EXPECT_EQ(sim().device_by_bus_id(&device, "0000:01:00.1"), CUDA_ERROR_INVALID_DEVICE);
    EXPECT_EQ(sim().device_by_bus_id(&device, "0001:01:00.0"), CUDA_ERROR_INVALID_DEVICE);
    EXPECT_EQ(sim().device_by_bus_id(&device, "not a bus id"), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(sim().device_by_bus_id(&device, "01:00"), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(sim().device_by_bus_id(&device, nullptr), CUDA_ERROR_INVALID_VALUE);

    std::array<char, 32> text{};
    ASSERT_EQ(sim().bus_id_of(text.data(), static_cast<int>(text.size()), 1), CUDA_SUCCESS);
    EXPECT_STREQ(text.data(), "1A000:C1:1F.0");
    EXPECT_EQ(sim().bus_id_of(text.data(), 5, 1), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(sim().bus_id_of(text.data(), 32, 2), CUDA_ERROR_INVALID_DEVICE);
    int count = 0;
    ASSERT_EQ(sim().device_count(&count), CUDA_SUCCESS);
    EXPECT_EQ(count, 2);
}

TEST_F(CudaSimTest, NothingWorksBeforeCuInitAndCuInitCanBeFaulted) {
    json machine = machine_of({cuda_gpu(1)});
    write_machine(machine);
    // In a child, whose simulator starts over whatever this process did.
    EXPECT_EQ(in_child([] {
                  int count = 0;
                  CUdevice device = 0;
                  CUcontext context = nullptr;
                  const bool refused = sim().device_count(&count) == CUDA_ERROR_NOT_INITIALIZED &&
                                       sim().device_by_bus_id(&device, "0000:01:00.0") ==
                                           CUDA_ERROR_NOT_INITIALIZED &&
                                       sim().retain(&context, 0) == CUDA_ERROR_NOT_INITIALIZED;
                  int version = 0;
                  const bool answered =
                      sim().driver_version(&version) == CUDA_SUCCESS && version == 12040;
                  return refused && answered && sim().init(1) == CUDA_ERROR_INVALID_VALUE &&
                                 sim().init(0) == CUDA_SUCCESS
                             ? 0
                             : 1;
              }),
              0);

    machine["faults"] = {{"cuInit", "NO_DEVICE"}};
    machine["cuda_driver_version"] = 13000;
    write_machine(machine);
    EXPECT_EQ(in_child([] {
                  int version = 0;
                  return sim().init(0) == CUDA_ERROR_NO_DEVICE &&
                                 sim().driver_version(&version) == CUDA_SUCCESS && version == 13000
                             ? 0
                             : 1;
              }),
              0);

    write_machine(machine_of(json::array()));
    EXPECT_EQ(in_child([] { return sim().init(0) == CUDA_ERROR_NO_DEVICE ? 0 : 1; }), 0);
    ASSERT_EQ(::unsetenv("WITH_GPU_SIM_MACHINE"), 0);
    EXPECT_EQ(in_child([] { return sim().init(0) == CUDA_ERROR_NO_DEVICE ? 0 : 1; }), 0);
}

TEST_F(CudaSimTest, AllocationAndContextFaults) {
    json gpu = cuda_gpu(1);
    gpu["faults"] = {{"cuMemAlloc_v2", {{"code", "OUT_OF_MEMORY"}, {"after", 2}}},
                     {"cuMemGetInfo_v2", "CUDA_ERROR_NOT_PERMITTED"}};
    json other = cuda_gpu(2);
    other["faults"] = {{"cuDevicePrimaryCtxRetain", 46}};
    write_machine(machine_of({gpu, other}));
    CUdevice device = -1;
    ASSERT_EQ(open_device("0000:01:00.0", device), CUDA_SUCCESS);
    std::array<CUdeviceptr, 3> pointers{};
    EXPECT_EQ(sim().allocate(&pointers[0], gib), CUDA_SUCCESS);
    EXPECT_EQ(sim().allocate(&pointers[1], gib), CUDA_SUCCESS);
    EXPECT_EQ(sim().allocate(&pointers[2], gib), CUDA_ERROR_OUT_OF_MEMORY);
    EXPECT_EQ(nvml_memory_of(0, ::getpid()), 2 * gib + 300 * mib);
    std::size_t free = 0;
    std::size_t total = 0;
    EXPECT_EQ(sim().memory_info(&free, &total), CUDA_ERROR_NOT_PERMITTED);
    ASSERT_EQ(sim().release(device), CUDA_SUCCESS);

    CUcontext context = nullptr;
    ASSERT_EQ(sim().device_by_bus_id(&device, "0000:02:00.0"), CUDA_SUCCESS);
    EXPECT_EQ(sim().retain(&context, device), CUDA_ERROR_DEVICE_UNAVAILABLE);
    EXPECT_EQ(nvml_memory_of(1, ::getpid()), std::nullopt);
}

TEST_F(CudaSimTest, ContextCostCanBeOutOfMemory) {
    json gpu = cuda_gpu(1, 1024);
    gpu["processes"] = json::array({{{"pid", 4000001}, {"used_memory_mib", 300}}});
    gpu["cuda_context_mib"] = 400; // 1024 - 512 - 300 = 212 MiB free
    write_machine(machine_of({gpu}));
    CUdevice device = -1;
    EXPECT_EQ(open_device("0000:01:00.0", device), CUDA_ERROR_OUT_OF_MEMORY);
    EXPECT_EQ(sim().release(device), CUDA_ERROR_INVALID_CONTEXT); // nothing was retained
}

TEST_F(CudaSimTest, CurrentContextIsPerThreadAndReleasedContextsRefuse) {
    write_machine(machine_of({cuda_gpu(1)}));
    CUdevice device = -1;
    ASSERT_EQ(open_device("0000:01:00.0", device), CUDA_SUCCESS);
    CUcontext current = nullptr;
    ASSERT_EQ(sim().get_current(&current), CUDA_SUCCESS);
    EXPECT_NE(current, nullptr);
    CUresult elsewhere = CUDA_SUCCESS;
    std::thread([&] {
        CUdeviceptr pointer = 0;
        elsewhere = sim().allocate(&pointer, mib);
    }).join();
    EXPECT_EQ(elsewhere, CUDA_ERROR_INVALID_CONTEXT);

    ASSERT_EQ(sim().release(device), CUDA_SUCCESS);
    CUdeviceptr pointer = 0;
    EXPECT_EQ(sim().allocate(&pointer, mib), CUDA_ERROR_INVALID_CONTEXT);
    EXPECT_EQ(sim().set_current(nullptr), CUDA_SUCCESS);
    EXPECT_EQ(sim().set_current(reinterpret_cast<CUcontext>(&pointer)), CUDA_ERROR_INVALID_CONTEXT);
}

TEST_F(CudaSimTest, VisibleDevicesFilterAndReorder) {
    write_machine(machine_of({cuda_gpu(1), cuda_gpu(2), cuda_gpu(3)}));
    ASSERT_EQ(::setenv("CUDA_VISIBLE_DEVICES", "2,GPU-1,7,0", 1), 0); // ends at the bad 7
    const int status = in_child([] {
        int count = 0;
        CUdevice device = -1;
        const bool counted = sim().init(0) == CUDA_SUCCESS &&
                             sim().device_count(&count) == CUDA_SUCCESS && count == 2;
        const bool first =
            sim().device_by_bus_id(&device, "0000:03:00.0") == CUDA_SUCCESS && device == 0;
        const bool second =
            sim().device_by_bus_id(&device, "0000:01:00.0") == CUDA_SUCCESS && device == 1;
        const bool hidden =
            sim().device_by_bus_id(&device, "0000:02:00.0") == CUDA_ERROR_INVALID_DEVICE;
        return counted && first && second && hidden ? 0 : 1;
    });
    ASSERT_EQ(::unsetenv("CUDA_VISIBLE_DEVICES"), 0);
    EXPECT_EQ(status, 0);
    ASSERT_EQ(::setenv("CUDA_VISIBLE_DEVICES", "", 1), 0);
    EXPECT_EQ(in_child([] { return sim().init(0) == CUDA_ERROR_NO_DEVICE ? 0 : 1; }), 0);
    ASSERT_EQ(::unsetenv("CUDA_VISIBLE_DEVICES"), 0);
}

TEST_F(CudaSimTest, ErrorStringsAndNames) {
    const char* text = nullptr;
    ASSERT_EQ(sim().error_string(CUDA_ERROR_OUT_OF_MEMORY, &text), CUDA_SUCCESS);
    EXPECT_STREQ(text, "out of memory");
    ASSERT_EQ(sim().error_name(CUDA_ERROR_NO_DEVICE, &text), CUDA_SUCCESS);
    EXPECT_STREQ(text, "CUDA_ERROR_NO_DEVICE");
    ASSERT_EQ(sim().error_name(CUDA_SUCCESS, &text), CUDA_SUCCESS);
    EXPECT_STREQ(text, "CUDA_SUCCESS");
    EXPECT_EQ(sim().error_string(12345, &text), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(text, nullptr);
    EXPECT_EQ(sim().error_string(CUDA_SUCCESS, nullptr), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(CudaSimTest, BadFaultsAreRejected) {
    json gpu = cuda_gpu(1);
    gpu["faults"] = {{"nvmlDeviceGetName", {{"code", "NOT_SUPPORTED"}, {"after", 1}}}};
    write_machine(machine_of({gpu}));
    EXPECT_EQ(in_child([] { return sim().init(0) == CUDA_ERROR_UNKNOWN ? 0 : 1; }), 0);
    gpu["faults"] = {{"cuMemAlloc_v2", "GPU_IS_LOST"}}; // an NVML name, not a CUDA one
    write_machine(machine_of({gpu}));
    EXPECT_EQ(in_child([] { return sim().init(0) == CUDA_ERROR_UNKNOWN ? 0 : 1; }), 0);
}

} // namespace
} // namespace withgpu::testing
