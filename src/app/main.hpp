// The composition root: the only place that knows both the pure modules and the
// OS adapters. Builds the real adapters and maps errors to exit codes.
#pragma once

namespace withgpu::app {

int main(int argc, char** argv);

} // namespace withgpu::app
