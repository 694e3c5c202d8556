// The CLI's entry: parse the command line and the configuration, run the command, and map
// errors to messages and exit codes (the only place that does).
#pragma once

#include "core/environment.hpp"

namespace withgpu::app {

// `installation` is the installed program's (core/environment.hpp) except in the test build.
int main(int argc, char** argv, const core::Installation& installation = {});

} // namespace withgpu::app
