// Golden files: output compared byte for byte with a file in tests/unit/golden/.
// WITH_GPU_UPDATE_GOLDEN=1 in the environment rewrites the files instead; each test file says
// at its top which command regenerates its files.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace withgpu::testing {

// The golden files sit next to this source; a compile definition may say otherwise.
inline std::filesystem::path golden_dir() {
#ifdef WITH_GPU_GOLDEN_DIR
    return WITH_GPU_GOLDEN_DIR;
#else
    return std::filesystem::path(__FILE__).parent_path() / "golden";
#endif
}

inline bool updating_golden() {
    const char* update = std::getenv("WITH_GPU_UPDATE_GOLDEN");
    return update != nullptr && std::string(update) == "1";
}

// Compares `actual` with the golden file `name`, or rewrites the file when updating.
inline void expect_golden(const std::string& name, const std::string& actual) {
    const auto path = golden_dir() / name;
    if (updating_golden()) {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << actual;
        ASSERT_TRUE(out.good()) << "could not write " << path;
        return;
    }
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(in.good()) << path << " is missing; run with WITH_GPU_UPDATE_GOLDEN=1 to create it";
    std::stringstream expected;
    expected << in.rdbuf();
    EXPECT_EQ(actual, expected.str())
        << "differs from " << path << "; if intended, regenerate (see the top of the test file)";
}

} // namespace withgpu::testing
