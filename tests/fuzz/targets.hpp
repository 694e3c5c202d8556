// Fuzz targets: each takes arbitrary bytes, feeds them to one parser or renderer and checks
// the invariants every input must keep (no exception past the API, a value or an Error, JSON
// that parses back, terminal text without control characters). A broken invariant calls
// fuzz::violation, which prints it and aborts, so that every driver sees a crash.
// Run by the seeded mutational driver (driver.cpp, what CI runs) or by libFuzzer
// (libfuzzer_main.cpp, optional clang build). See tests/fuzz/README.md.
#pragma once

#include <string_view>
#include <vector>

namespace withgpu::fuzz {

struct Target {
    const char* name;
    void (*run)(std::string_view data);
    // Byte strings worth inserting while mutating (tokens of the input's language).
    std::vector<std::string_view> dictionary;
};

[[nodiscard]] const std::vector<Target>& targets();
[[nodiscard]] const Target* find_target(std::string_view name);

[[noreturn]] void violation(std::string_view target, std::string_view what);

} // namespace withgpu::fuzz
