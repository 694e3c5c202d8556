// The SLURM module over plain values: which GPUs an allocation holds, under which CUDA ids,
// gres.conf text, and whether a job is gone.
#include "slurm/allocation.hpp"
#include "slurm/gres_conf.hpp"
#include "snapshot_builder.hpp"

#include <gtest/gtest.h>

namespace withgpu::slurm {
namespace {

using testing::make_gpu;

Variables step(std::string step_gpus, std::optional<std::string> cuda) {
    Variables v;
    v.job_id = "1234";
    v.step_id = "0";
    v.step_gpus = std::move(step_gpus);
    v.cuda_visible_devices = std::move(cuda);
    return v;
}

gpu::MachineSnapshot machine_with_minors(const std::vector<unsigned>& minors) {
    gpu::MachineSnapshot machine;
    for (unsigned i = 0; i < minors.size(); ++i) {
        auto g = make_gpu(i);
        g.minor_number = minors[i];
        machine.gpus.push_back(g);
    }
    return machine;
}

TEST(SlurmAllocation, OutsideSlurmThereIsNone) {
    Variables v;
    v.cuda_visible_devices = "0,1";
    v.job_gpus = "2"; // without SLURM_JOB_ID this is not an allocation
    const auto allocation = read_allocation(v);
    ASSERT_TRUE(allocation);
    EXPECT_FALSE(allocation->has_value());
}

TEST(SlurmAllocation, WithoutDeviceConstraintTheIdsAreTheSame) {
    const auto allocation = read_allocation(step("2,3", "2,3"));
    ASSERT_TRUE(allocation && allocation->has_value());
    const Allocation& a = **allocation;
    EXPECT_EQ(a.source, "SLURM_STEP_GPUS");
    EXPECT_EQ(a.minor_numbers, (std::vector<unsigned>{2, 3}));
    EXPECT_EQ(a.cuda_id_of(3), "3");
    EXPECT_EQ(a.cuda_id_of(0), std::nullopt);
    EXPECT_EQ(a.describe(), "job 1234 step 0");
}

TEST(SlurmAllocation, ConstrainDevicesMapsByMinorNumberNotPosition) {
    // ConstrainDevices=yes: the job sees its two GPUs as CUDA 0 and 1, SLURM names them 2, 3.
    const auto allocation = read_allocation(step("2,3", "0,1"));
    ASSERT_TRUE(allocation && allocation->has_value());
    const Allocation& a = **allocation;
    EXPECT_EQ(a.cuda_id_of(2), "0");
    EXPECT_EQ(a.cuda_id_of(3), "1");
    // Inside the job NVML may list the allocated GPUs first: found by minor number.
    const auto machine = machine_with_minors({3, 2});
    EXPECT_EQ(allocated_indices(a, machine), (std::vector<unsigned>{1, 0}));
    // On the full node, GPUs 0 and 1 (minor 0, 1) are not the job's, whatever their position.
    const auto node = machine_with_minors({0, 1, 2, 3});
    EXPECT_EQ(allocated_indices(a, node), (std::vector<unsigned>{2, 3}));
}

TEST(SlurmAllocation, StepGpusWinOverJobGpus) {
    auto v = step("1", "1");
    v.job_gpus = "0,1";
    const auto allocation = read_allocation(v);
    ASSERT_TRUE(allocation && allocation->has_value());
    EXPECT_EQ((*allocation)->minor_numbers, (std::vector<unsigned>{1}));
}

TEST(SlurmAllocation, BatchScriptUsesJobGpus) {
    Variables v;
    v.job_id = "77";
    v.job_gpus = "0,2";
    v.gpus_on_node = "2";
    v.cuda_visible_devices = "0,1";
    const auto allocation = read_allocation(v);
    ASSERT_TRUE(allocation && allocation->has_value());
    EXPECT_EQ((*allocation)->source, "SLURM_JOB_GPUS");
    EXPECT_EQ((*allocation)->cuda_id_of(2), "1");
    EXPECT_EQ((*allocation)->describe(), "job 77");
}

TEST(SlurmAllocation, GresNoneHoldsNoGpu) {
    Variables v;
    v.job_id = "5";
    v.step_id = "1";
    v.cuda_visible_devices = "NoDevFiles";
    const auto allocation = read_allocation(v);
    ASSERT_TRUE(allocation && allocation->has_value());
    EXPECT_TRUE((*allocation)->minor_numbers.empty());
    EXPECT_EQ(allocation_text(**allocation, machine_with_minors({0, 1})),
              "SLURM job 5 step 1 holds no GPU; with-gpu will not run commands here\n");
}

TEST(SlurmAllocation, MalformedValuesAreUsageErrors) {
    for (const auto& [gpus, cuda] : std::vector<std::pair<std::string, std::string>>{
             {"2,x", "0,1"}, {"2,,3", "0,1"}, {"-1", "0"}, {"3-1", "0"}, {"1,1", "0,1"}}) {
        const auto allocation = read_allocation(step(gpus, cuda));
        ASSERT_FALSE(allocation) << gpus;
        EXPECT_EQ(allocation.error().kind, ErrorKind::usage) << gpus;
        EXPECT_NE(allocation.error().message.find("SLURM_STEP_GPUS"), std::string::npos);
    }
    Variables v = step("0", "0");
    v.gpus_on_node = "two";
    EXPECT_FALSE(read_allocation(v));
}

TEST(SlurmAllocation, CudaVisibleDevicesMustHaveOneIdPerGpu) {
    for (const auto& cuda : std::vector<std::optional<std::string>>{std::nullopt, "0", "0,1,2"}) {
        const auto allocation = read_allocation(step("2,3", cuda));
        ASSERT_FALSE(allocation);
        EXPECT_EQ(allocation.error().kind, ErrorKind::usage);
        EXPECT_NE(allocation.error().message.find("CUDA_VISIBLE_DEVICES"), std::string::npos);
    }
}

TEST(SlurmAllocation, GpusOnNodeWithoutAListIsAnError) {
    Variables v;
    v.job_id = "9";
    v.gpus_on_node = "2";
    const auto allocation = read_allocation(v);
    ASSERT_FALSE(allocation);
    EXPECT_NE(allocation.error().message.find("SLURM_GPUS_ON_NODE=2"), std::string::npos);
}

TEST(SlurmAllocation, RangesAreUnderstood) {
    const auto ids = parse_gpu_ids("0-2,5", "SLURM_JOB_GPUS");
    ASSERT_TRUE(ids);
    EXPECT_EQ(*ids, (std::vector<unsigned>{0, 1, 2, 5}));
    EXPECT_FALSE(parse_gpu_ids("0-4000000000", "SLURM_JOB_GPUS"));
}

TEST(SlurmAllocation, StatusLineNamesTheGpus) {
    const auto allocation = read_allocation(step("2,3", "0,1"));
    ASSERT_TRUE(allocation && allocation->has_value());
    EXPECT_EQ(allocation_text(**allocation, machine_with_minors({0, 1, 2, 3})),
              "SLURM job 1234 step 0 holds GPU 2, GPU 3 (SLURM_STEP_GPUS=2,3); with-gpu uses "
              "only these\n");
    const auto json = allocation_json(**allocation, machine_with_minors({0, 1, 2, 3}));
    EXPECT_EQ(json.at("gpus"), nlohmann::json({2, 3}));
    EXPECT_EQ(json.at("gpu_ids"), nlohmann::json({2, 3}));
    EXPECT_EQ(json.at("job_id"), "1234");
}

TEST(SlurmJobPresence, ReadsTheJobState) {
    EXPECT_EQ(job_presence(0, "JobId=12 JobName=x UserId=a(1) JobState=RUNNING Reason=None"),
              JobPresence::alive);
    EXPECT_EQ(job_presence(0, "JobId=12 JobState=COMPLETING Reason=None"), JobPresence::alive);
    EXPECT_EQ(job_presence(0, "JobId=12 JobState=COMPLETED Reason=None"), JobPresence::gone);
    EXPECT_EQ(job_presence(0, "JobId=12 JobState=CANCELLED Reason=None"), JobPresence::gone);
    EXPECT_EQ(job_presence(1, "slurm_load_jobs error: Invalid job id specified\n"),
              JobPresence::gone);
    EXPECT_EQ(job_presence(1, "slurm_load_jobs error: Unable to contact slurm controller"),
              JobPresence::unknown);
    EXPECT_EQ(job_presence(0, "JobId=12 OrigJobState=COMPLETED"), JobPresence::unknown);
}

TEST(SlurmGresConf, TypeNames) {
    EXPECT_EQ(gres_type("NVIDIA A100-SXM4-80GB"), "a100-sxm4-80gb");
    EXPECT_EQ(gres_type("Tesla T4"), "t4");
    EXPECT_EQ(gres_type("NVIDIA GeForce RTX 4090"), "geforce_rtx_4090");
    EXPECT_EQ(gres_type("NVIDIA H100 80GB HBM3"), "h100_80gb_hbm3");
    EXPECT_EQ(gres_type("NVIDIA "), "gpu"); // nothing left but the vendor
    EXPECT_EQ(gres_type(""), "gpu");
    EXPECT_EQ(cpu_ranges({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
}

TEST(SlurmGresConf, OneLinePerGpuInMinorOrderAndTheNodeLine) {
    gpu::MachineSnapshot machine = machine_with_minors({1, 0, 2});
    machine.driver_version = "550.54.15";
    machine.gpus[0].local_cpus = std::vector<unsigned>{0, 1, 2, 3};
    machine.gpus[1].local_cpus = std::vector<unsigned>{0, 1, 2, 3};
    machine.gpus[2].name = "Tesla T4";
    machine.gpus[2].local_cpus = std::vector<unsigned>{4, 5, 36, 37}; // threads of cores 4, 5
    const std::map<unsigned, unsigned> cores{{4, 4}, {5, 5}, {36, 4}, {37, 5}};
    const auto text = gres_conf(machine, "node7", cores);
    ASSERT_TRUE(text);
    EXPECT_EQ(*text,
              "# gres.conf for node7, written by with-gpu --slurm-gres-conf from NVML (driver "
              "550.54.15).\n"
              "# One line per GPU: File= is its device file, Cores= the CPUs close to it.\n"
              "Name=gpu Type=a100-sxm4-80gb File=/dev/nvidia0 Cores=0-3\n"
              "Name=gpu Type=a100-sxm4-80gb File=/dev/nvidia1 Cores=0-3\n"
              "Name=gpu Type=t4 File=/dev/nvidia2 Cores=4-5\n"
              "# warning: on this machine the device minor numbers do not follow the PCI bus\n"
              "# order. Inside a job with ConstrainDevices=yes, CUDA numbers the job's GPUs in\n"
              "# PCI order while SLURM numbers them in the order above, so CUDA_VISIBLE_DEVICES\n"
              "# ids may name other GPUs than SLURM meant. Use AutoDetect=nvml instead of these\n"
              "# lines (docs/slurm.md, \"Device order\").\n"
              "#\n"
              "# In slurm.conf (keep the node's other settings, e.g. CPUs=):\n"
              "# GresTypes=gpu\n"
              "# NodeName=node7 Gres=gpu:a100-sxm4-80gb:2,gpu:t4:1\n");
}

TEST(SlurmGresConf, NoWarningWhenMinorNumbersFollowThePciOrder) {
    const auto text = gres_conf(machine_with_minors({0, 1, 5}), "n", {});
    ASSERT_TRUE(text);
    EXPECT_EQ(text->find("warning"), std::string::npos) << *text;
}

TEST(SlurmGresConf, GpusThatCannotBeDescribedAreLeftOutAndNamed) {
    gpu::MachineSnapshot machine = machine_with_minors({0, 1});
    machine.gpus[1].error = "GPU is lost";
    const auto text = gres_conf(machine, "n", {});
    ASSERT_TRUE(text);
    EXPECT_NE(text->find("Name=gpu Type=a100-sxm4-80gb File=/dev/nvidia0\n"), std::string::npos);
    EXPECT_NE(text->find("# left out: GPU 1"), std::string::npos);
    EXPECT_NE(text->find("Gres=gpu:a100-sxm4-80gb:1\n"), std::string::npos);

    machine.gpus[0].minor_number.reset();
    const auto none = gres_conf(machine, "n", {});
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().kind, ErrorKind::failed);
}

} // namespace
} // namespace withgpu::slurm
