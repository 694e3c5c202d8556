// The composition root: the only place that knows both the pure modules and the
// OS adapters. Builds the real adapters and maps errors to exit codes.
#pragma once

#include "config/paths.hpp"
#include "config/resolve.hpp"

#include <string>

namespace withgpu::app {

// Where with-gpu finds what no user may change. The installed program always uses the
// defaults; no environment variable or flag reaches these (docs/config.md). Only the test
// program tests/e2e builds (with-gpu-test-build) points them elsewhere.
struct Installation {
    std::string system_config = config::system_config_path();
};

int main(int argc, char** argv, const Installation& installation = {});

} // namespace withgpu::app
