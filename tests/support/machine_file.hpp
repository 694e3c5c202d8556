// Writes a simulator machine file the way tests must change a machine while things run: in
// one step (a staging file, then rename), so that the simulators never read half of it.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace withgpu::testing {

// Replaces `path` with `machine` and names it in WITH_GPU_SIM_MACHINE.
inline void write_machine_file(const std::filesystem::path& path, const nlohmann::json& machine) {
    auto staging = path;
    staging += ".new";
    {
        std::ofstream out(staging);
        out << machine.dump(2);
        ASSERT_TRUE(out.good());
    }
    std::filesystem::rename(staging, path);
    ASSERT_EQ(::setenv("WITH_GPU_SIM_MACHINE", path.c_str(), 1), 0);
}

} // namespace withgpu::testing
