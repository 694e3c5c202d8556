// Merging by pid, with lists the simulator cannot produce (one pid listed twice).
#include "nvml/process_merge.hpp"

#include <gtest/gtest.h>

namespace withgpu::nvml {
namespace {

using Kind = gpu::Process::Kind;
constexpr std::uint64_t mib = 1024ULL * 1024ULL;

TEST(ProcessMerge, SamePidInBothListsKeepsTheLargerFigure) {
    std::map<unsigned, gpu::Process> merged;
    merge_processes(merged, {{10, 100 * mib}, {20, 5 * mib}}, Kind::compute);
    merge_processes(merged, {{10, 700 * mib}, {30, std::nullopt}}, Kind::graphics);

    ASSERT_EQ(merged.size(), 3U);
    EXPECT_EQ(merged[10].pid, 10U);
    EXPECT_EQ(merged[10].kind, Kind::compute_and_graphics);
    EXPECT_EQ(merged[10].used_memory_bytes, 700 * mib);
    EXPECT_EQ(merged[20].kind, Kind::compute);
    EXPECT_EQ(merged[20].used_memory_bytes, 5 * mib);
    EXPECT_EQ(merged[30].kind, Kind::graphics);
    EXPECT_FALSE(merged[30].used_memory_bytes.has_value());
}

TEST(ProcessMerge, LargerComputeFigureWinsToo) {
    std::map<unsigned, gpu::Process> merged;
    merge_processes(merged, {{10, 900 * mib}}, Kind::compute);
    merge_processes(merged, {{10, 300 * mib}}, Kind::graphics);
    EXPECT_EQ(merged[10].kind, Kind::compute_and_graphics);
    EXPECT_EQ(merged[10].used_memory_bytes, 900 * mib);
}

TEST(ProcessMerge, RepeatsWithinOneListAddUp) {
    std::map<unsigned, gpu::Process> merged;
    merge_processes(merged, {{10, 100 * mib}, {10, 200 * mib}, {10, std::nullopt}}, Kind::compute);
    ASSERT_EQ(merged.size(), 1U);
    EXPECT_EQ(merged[10].kind, Kind::compute);
    EXPECT_EQ(merged[10].used_memory_bytes, 300 * mib);
}

TEST(ProcessMerge, UnknownMemoryDoesNotHideAKnownFigure) {
    std::map<unsigned, gpu::Process> merged;
    merge_processes(merged, {{10, std::nullopt}}, Kind::compute);
    merge_processes(merged, {{10, 40 * mib}}, Kind::graphics);
    EXPECT_EQ(merged[10].used_memory_bytes, 40 * mib);

    std::map<unsigned, gpu::Process> unknown;
    merge_processes(unknown, {{10, std::nullopt}}, Kind::compute);
    merge_processes(unknown, {{10, std::nullopt}}, Kind::graphics);
    EXPECT_FALSE(unknown[10].used_memory_bytes.has_value());
    EXPECT_EQ(unknown[10].kind, Kind::compute_and_graphics);
}

} // namespace
} // namespace withgpu::nvml
