// The CUDA loader and Hold against the simulator, checked through NVML's view of the GPU.
#include "cuda/driver.hpp"
#include "cuda/hold.hpp"
#include "sim_machine.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace withgpu::testing {
namespace {

using cuda::Bytes;
using cuda::Driver;
using cuda::Fraction;
using cuda::Hold;
using nlohmann::json;

class HoldTest : public SimMachine {
  protected:
    static Driver open_driver() {
        auto driver = Driver::open(WITH_GPU_CUDA_SIM_LIBRARY);
        if (!driver) {
            ADD_FAILURE() << driver.error().message;
            std::abort();
        }
        return std::move(*driver);
    }
};

TEST(CudaBusId, NormalisesEveryFormTheDriverTakes) {
    EXPECT_EQ(cuda::normalise_pci_bus_id("00000000:07:00.0"), "0000:07:00.0");
    EXPECT_EQ(cuda::normalise_pci_bus_id("0000:C1:1F.0"), "0000:c1:1f.0");
    EXPECT_EQ(cuda::normalise_pci_bus_id("0001A000:c1:00.0"), "1a000:c1:00.0");
    EXPECT_EQ(cuda::normalise_pci_bus_id("0000:07:00"), "0000:07:00.0");
    EXPECT_EQ(cuda::normalise_pci_bus_id("07:00.0"), "0000:07:00.0");
    for (const char* bad : {"",
                            "07:00",
                            "0000:07:20.0",
                            "0000:07:00.8",
                            "000000000:07:00.0",
                            "0000:007:00.0",
                            "0000:07:00.0.0",
                            "x:07:00.0",
                            "0000:07:00.0 "}) {
        const auto normalised = cuda::normalise_pci_bus_id(bad);
        ASSERT_FALSE(normalised) << bad;
        EXPECT_EQ(normalised.error().kind, ErrorKind::usage);
    }
}

TEST_F(HoldTest, MissingLibraryIsAClearError) {
    const auto driver = Driver::open("/nonexistent/libcuda.so.1");
    ASSERT_FALSE(driver);
    EXPECT_EQ(driver.error().kind, ErrorKind::failed);
    EXPECT_NE(
        driver.error().message.find("cannot load the CUDA driver (/nonexistent/libcuda.so.1)"),
        std::string::npos)
        << driver.error().message;
    EXPECT_NE(driver.error().message.find("No such file"), std::string::npos);
    EXPECT_NE(driver.error().hint.find("libcuda.so.1"), std::string::npos);
}

TEST_F(HoldTest, ALibraryWithoutTheEntryPointsIsNotTaken) {
    const auto driver = Driver::open(WITH_GPU_SIM_LIBRARY); // the NVML simulator
    ASSERT_FALSE(driver);
    EXPECT_NE(driver.error().message.find("is not a usable CUDA driver library: it lacks cuInit, "
                                          "cuDeviceGetByPCIBusId"),
              std::string::npos)
        << driver.error().message;
}

TEST_F(HoldTest, OpensTheSimulatorByPathAndByName) {
    json machine = machine_of({cuda_gpu(1), cuda_gpu(2)});
    machine["cuda_driver_version"] = 12080;
    write_machine(machine);
    const auto by_path = Driver::open(WITH_GPU_CUDA_SIM_LIBRARY);
    ASSERT_TRUE(by_path) << by_path.error().message;
    EXPECT_EQ(by_path->library(), WITH_GPU_CUDA_SIM_LIBRARY);
    EXPECT_EQ(by_path->version(), 12080);
    EXPECT_EQ(by_path->device_count(), 2);
    const auto by_name = Driver::open(); // LD_LIBRARY_PATH, set by CTest
    ASSERT_TRUE(by_name) << by_name.error().message;
    EXPECT_EQ(by_name->library(), "libcuda.so.1");
}

TEST_F(HoldTest, InitFailureNamesTheErrorAndHints) {
    json machine = machine_of({cuda_gpu(1)});
    machine["faults"] = {{"cuInit", "NO_DEVICE"}};
    write_machine(machine);
    // In a child: cuInit's outcome is for the process, and this one may have run it.
    EXPECT_EQ(
        in_child([] {
            const auto driver = Driver::open(WITH_GPU_CUDA_SIM_LIBRARY);
            if (driver) {
                return 1;
            }
            std::fprintf(
                stderr, "%s\n%s\n", driver.error().message.c_str(), driver.error().hint.c_str());
            const bool named =
                driver.error().message.find("could not be initialised: no CUDA-capable "
                                            "device is detected (CUDA_ERROR_NO_DEVICE) "
                                            "(cuInit in ") != std::string::npos;
            return named && driver.error().hint.find("CUDA_VISIBLE_DEVICES") != std::string::npos
                       ? 0
                       : 2;
        }),
        0);
}

TEST_F(HoldTest, HoldsASizeUntilReleased) {
    write_machine(machine_of({cuda_gpu(1), cuda_gpu(7)}));
    const Driver driver = open_driver();
    auto hold = Hold::make(driver, "00000000:07:00.0", Bytes{8 * gib + 1});
    ASSERT_TRUE(hold) << hold.error().message;
    EXPECT_TRUE(hold->active());
    EXPECT_EQ(hold->pci_bus_id(), "0000:07:00.0");
    EXPECT_EQ(hold->requested_bytes(), 8 * gib + 1);
    EXPECT_EQ(hold->held_bytes(), 8 * gib + 2 * mib); // whole 2 MiB units
    EXPECT_EQ(hold->free_bytes_before(), (81920 - 512 - 300) * mib);
    EXPECT_EQ(nvml_memory_of(1, ::getpid()), 8 * gib + 2 * mib + 300 * mib);
    EXPECT_EQ(nvml_memory_of(0, ::getpid()), std::nullopt);

    Hold moved = std::move(*hold);
    EXPECT_FALSE(hold->active()); // NOLINT(bugprone-use-after-move): moved-from is inactive
    EXPECT_EQ(moved.held_bytes(), 8 * gib + 2 * mib);
    moved.release();
    EXPECT_FALSE(moved.active());
    EXPECT_EQ(moved.held_bytes(), 0U);
    EXPECT_EQ(nvml_memory_of(1, ::getpid()), std::nullopt);
    moved.release(); // idempotent
}

TEST_F(HoldTest, HoldsAFractionOfTheFreeMemoryAndFreesOnDestruction) {
    json gpu = cuda_gpu(1, 40960);
    gpu["processes"] = json::array({{{"pid", 4000001}, {"used_memory_mib", 8192}}});
    write_machine(machine_of({gpu}));
    const Driver driver = open_driver();
    const auto info = driver.memory_info("00000000:01:00.0");
    ASSERT_TRUE(info) << info.error().message;
    const std::uint64_t free = (40960 - 512 - 8192 - 300) * mib; // the context counts
    EXPECT_EQ(info->free_bytes, free);
    EXPECT_EQ(info->total_bytes, (40960 - 512) * mib);
    {
        auto hold = Hold::make(driver, "00000000:01:00.0", Fraction{0.25});
        ASSERT_TRUE(hold) << hold.error().message;
        EXPECT_EQ(hold->free_bytes_before(), free);
        EXPECT_EQ(hold->requested_bytes(), free / 4);
        EXPECT_EQ(hold->held_bytes(), (free / 4 + 2 * mib - 1) / (2 * mib) * (2 * mib));
        EXPECT_EQ(nvml_memory_of(0, ::getpid()), hold->held_bytes() + 300 * mib);
    }
    EXPECT_EQ(nvml_memory_of(0, ::getpid()), std::nullopt);
}

TEST_F(HoldTest, LeavesAMarginAndKeepsWhatItGotAtTheFirstOutOfMemory) {
    write_machine(machine_of({cuda_gpu(1, 16384)}));
    const Driver driver = open_driver();
    {
        auto hold = Hold::make(driver, "0000:01:00.0", Fraction{1.0});
        ASSERT_TRUE(hold) << hold.error().message;
        const std::uint64_t free = (16384 - 512 - 300) * mib;
        EXPECT_EQ(hold->requested_bytes(), free);
        EXPECT_EQ(hold->held_bytes(), free - 312 * mib); // 2 % of free, whole 2 MiB units
    }
    json gpu = cuda_gpu(1, 16384);
    gpu["faults"] = {{"cuMemAlloc_v2", {{"code", "OUT_OF_MEMORY"}, {"after", 3}}}};
    write_machine(machine_of({gpu}));
    auto hold = Hold::make(driver, "0000:01:00.0", Bytes{10 * gib});
    ASSERT_TRUE(hold) << hold.error().message;
    EXPECT_EQ(hold->requested_bytes(), 10 * gib);
    EXPECT_EQ(hold->held_bytes(), 3 * cuda::hold_chunk_bytes);
    EXPECT_EQ(nvml_memory_of(0, ::getpid()), 3 * gib + 300 * mib);
}

TEST_F(HoldTest, NothingHeldIsAnErrorAndLeavesNothingBehind) {
    json gpu = cuda_gpu(1);
    gpu["faults"] = {{"cuMemAlloc_v2", "OUT_OF_MEMORY"}};
    write_machine(machine_of({gpu}));
    const Driver driver = open_driver();
    const auto hold = Hold::make(driver, "0000:01:00.0", Fraction{0.25});
    ASSERT_FALSE(hold);
    EXPECT_EQ(hold.error().kind, ErrorKind::failed);
    EXPECT_EQ(hold.error().message,
              "cuMemAlloc_v2 failed on GPU 0000:01:00.0: out of memory (CUDA_ERROR_OUT_OF_MEMORY)");
    EXPECT_EQ(nvml_memory_of(0, ::getpid()), std::nullopt); // the context was released

    json tiny = cuda_gpu(1, 1024); // 1024 - 512 - 300 = 212 MiB free: below the margin
    write_machine(machine_of({tiny}));
    const auto small = Hold::make(driver, "0000:01:00.0", Bytes{gib});
    ASSERT_FALSE(small);
    EXPECT_EQ(small.error().message, "GPU 0000:01:00.0 has 0.21 GiB free: too little to hold any");
    EXPECT_EQ(nvml_memory_of(0, ::getpid()), std::nullopt);
}

TEST_F(HoldTest, DeviceAndAmountErrors) {
    json gpu = cuda_gpu(2);
    gpu["faults"] = {{"cuDevicePrimaryCtxRetain", "NOT_PERMITTED"}};
    write_machine(machine_of({cuda_gpu(1), gpu}));
    const Driver driver = open_driver();
    const auto unknown = Hold::make(driver, "0000:99:00.0", Bytes{gib});
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().message,
              "cuDeviceGetByPCIBusId failed on GPU 0000:99:00.0: invalid device ordinal "
              "(CUDA_ERROR_INVALID_DEVICE)");
    const auto refused = Hold::make(driver, "0000:02:00.0", Bytes{gib});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().message,
              "cuDevicePrimaryCtxRetain failed on GPU 0000:02:00.0: operation not permitted "
              "(CUDA_ERROR_NOT_PERMITTED)");
    const auto bad_id = Hold::make(driver, "GPU-1", Bytes{gib});
    ASSERT_FALSE(bad_id);
    EXPECT_EQ(bad_id.error().kind, ErrorKind::usage);
    for (const double fraction : {0.0, -0.5, 1.5, std::nan("")}) {
        const auto bad = Hold::make(driver, "0000:01:00.0", Fraction{fraction});
        ASSERT_FALSE(bad) << fraction;
        EXPECT_EQ(bad.error().kind, ErrorKind::usage);
    }
    EXPECT_EQ(Hold::make(driver, "0000:01:00.0", Bytes{0}).error().kind, ErrorKind::usage);
    EXPECT_EQ(nvml_memory_of(0, ::getpid()), std::nullopt);
}

TEST_F(HoldTest, TwoGpusAreHeldApartAndMeasured) {
    write_machine(machine_of({cuda_gpu(1), cuda_gpu(2)}));
    const Driver driver = open_driver();
    const auto start = std::chrono::steady_clock::now();
    auto first = Hold::make(driver, "00000000:01:00.0", Bytes{20 * gib});
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(first) << first.error().message;
    auto second = Hold::make(driver, "00000000:02:00.0", Fraction{0.25});
    ASSERT_TRUE(second) << second.error().message;
    std::printf("a 20 GiB hold took %.2f ms\n",
                std::chrono::duration<double, std::milli>(took).count());
    EXPECT_LT(took, std::chrono::seconds(5)); // a loose bound for loaded CI machines
    EXPECT_EQ(nvml_memory_of(0, ::getpid()), 20 * gib + 300 * mib);
    EXPECT_EQ(nvml_memory_of(1, ::getpid()), second->held_bytes() + 300 * mib);
    first->release();
    EXPECT_EQ(nvml_memory_of(0, ::getpid()), std::nullopt);
    EXPECT_EQ(nvml_memory_of(1, ::getpid()), second->held_bytes() + 300 * mib);
}

TEST_F(HoldTest, HoldingLeavesTheCallersCurrentContextAlone) {
    write_machine(machine_of({cuda_gpu(1), cuda_gpu(2)}));
    const Driver driver = open_driver();
    auto outer = Hold::make(driver, "0000:01:00.0", Bytes{gib});
    ASSERT_TRUE(outer);
    // Nothing is current here before or after, so a hold made on another GPU must not
    // leave its context current: the next memory_info would then see GPU 2.
    auto inner = Hold::make(driver, "0000:02:00.0", Bytes{gib});
    ASSERT_TRUE(inner);
    const auto info = driver.memory_info("0000:01:00.0");
    ASSERT_TRUE(info);
    EXPECT_EQ(info->free_bytes, (81920 - 512 - 300) * mib - gib);
}

TEST_F(HoldTest, AnotherProcessHoldingShowsAsLessFree) {
    write_machine(machine_of({cuda_gpu(1, 16384)}));
    HoldingChild child([] {
        const auto driver = Driver::open(WITH_GPU_CUDA_SIM_LIBRARY);
        if (!driver) {
            return 1;
        }
        static std::optional<Hold> kept; // lives until the child is killed
        auto hold = Hold::make(*driver, "0000:01:00.0", Bytes{8 * gib});
        if (!hold) {
            return 2;
        }
        kept = std::move(*hold);
        return 0;
    });
    ASSERT_TRUE(child.ready());
    const Driver driver = open_driver();
    auto hold = Hold::make(driver, "0000:01:00.0", Fraction{0.5});
    ASSERT_TRUE(hold) << hold.error().message;
    EXPECT_EQ(hold->free_bytes_before(), (16384 - 512 - 600) * mib - 8 * gib);
    child.kill_and_await_zombie();
    EXPECT_EQ(nvml_memory_of(0, child.pid()), std::nullopt);
    EXPECT_EQ(nvml_memory_of(0, ::getpid()), hold->held_bytes() + 300 * mib);
}

} // namespace
} // namespace withgpu::testing
