// gpu::MachineSnapshot's two lookups: a GPU by NVML index, and the UUIDs that can carry a claim.
#include "gpu/snapshot.hpp"

#include <gtest/gtest.h>

namespace withgpu::gpu {
namespace {

MachineSnapshot three_gpus() {
    MachineSnapshot machine;
    machine.gpus.resize(3);
    machine.gpus[0].index = 0;
    machine.gpus[0].uuid = "GPU-aaaa";
    machine.gpus[1].index = 1; // failed before its UUID was read
    machine.gpus[1].error = "GPU is lost";
    machine.gpus[2].index = 2;
    machine.gpus[2].uuid = "GPU-cccc";
    return machine;
}

TEST(MachineSnapshotTest, FindsAGpuByIndexAndNothingForAnUnknownIndex) {
    const MachineSnapshot machine = three_gpus();
    ASSERT_NE(machine.find(2), nullptr);
    EXPECT_EQ(machine.find(2)->uuid, "GPU-cccc");
    EXPECT_EQ(machine.find(3), nullptr);
    EXPECT_EQ(MachineSnapshot{}.find(0), nullptr);
}

TEST(MachineSnapshotTest, UuidsLeaveOutAGpuWithoutOne) {
    EXPECT_EQ(three_gpus().uuids(), (std::vector<std::string>{"GPU-aaaa", "GPU-cccc"}));
    EXPECT_TRUE(MachineSnapshot{}.uuids().empty());
}

} // namespace
} // namespace withgpu::gpu
