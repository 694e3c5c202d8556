// One snapshot through a fresh NVML session, for tests that link withgpu_nvml.
#pragma once

#include "nvml/nvml.hpp"

#include <gtest/gtest.h>

#include <string>

namespace withgpu::testing {

// Opens `library` and reads every GPU; a failure of either is a test failure, and an empty
// snapshot.
inline gpu::MachineSnapshot snapshot_through(const std::string& library) {
    auto nvml = nvml::Nvml::open(library);
    if (!nvml) {
        ADD_FAILURE() << nvml.error().message;
        return {};
    }
    auto snapshot = nvml->snapshot();
    if (!snapshot) {
        ADD_FAILURE() << snapshot.error().message;
        return {};
    }
    return std::move(*snapshot);
}

} // namespace withgpu::testing
