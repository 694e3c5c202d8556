#include "run/job_environment.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace withgpu::run {
namespace {

TEST(JobEnvironmentTest, SetsTheGpuVariablesInChoiceOrder) {
    auto env = job_environment({"HOME=/home/a", "PATH=/bin"}, {{3, "GPU-three"}, {1, "GPU-one"}});
    EXPECT_EQ(env,
              (std::vector<std::string>{"HOME=/home/a",
                                        "PATH=/bin",
                                        "CUDA_VISIBLE_DEVICES=3,1",
                                        "CUDA_DEVICE_ORDER=PCI_BUS_ID",
                                        "WITH_GPU_UUIDS=GPU-three,GPU-one"}));
}

TEST(JobEnvironmentTest, SlurmIdsReplaceIndicesWhereGiven) {
    // Inside a device-constrained SLURM step, NVML index 3 is the job's CUDA device 1.
    auto env =
        job_environment({"CUDA_VISIBLE_DEVICES=0,1"}, {{3, "GPU-three", "1"}, {2, "GPU-two", "0"}});
    EXPECT_NE(std::find(env.begin(), env.end(), "CUDA_VISIBLE_DEVICES=1,0"), env.end());
    EXPECT_NE(std::find(env.begin(), env.end(), "WITH_GPU_UUIDS=GPU-three,GPU-two"), env.end());
}

TEST(JobEnvironmentTest, ReplacesInheritedValuesAndKeepsLookalikes) {
    auto env = job_environment({"CUDA_VISIBLE_DEVICES=0,1,2",
                                "CUDA_DEVICE_ORDER=FASTEST_FIRST",
                                "CUDA_VISIBLE_DEVICES_X=keep",
                                "WITH_GPU_UUIDS=old",
                                "EMPTY="},
                               {{2, "GPU-two"}});
    auto count = [&](const std::string& prefix) {
        return std::count_if(
            env.begin(), env.end(), [&](const std::string& e) { return e.rfind(prefix, 0) == 0; });
    };
    EXPECT_EQ(count("CUDA_VISIBLE_DEVICES="), 1);
    EXPECT_EQ(count("CUDA_DEVICE_ORDER="), 1);
    EXPECT_EQ(count("WITH_GPU_UUIDS="), 1);
    EXPECT_NE(std::find(env.begin(), env.end(), "CUDA_VISIBLE_DEVICES=2"), env.end());
    EXPECT_NE(std::find(env.begin(), env.end(), "CUDA_VISIBLE_DEVICES_X=keep"), env.end());
    EXPECT_NE(std::find(env.begin(), env.end(), "EMPTY="), env.end());
}

} // namespace
} // namespace withgpu::run
