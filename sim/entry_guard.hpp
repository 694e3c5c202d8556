// What every exported simulator function runs inside: no C++ exception may cross the C ABI.
#pragma once

#include <cstdio>
#include <exception>

namespace withgpu::sim {

// Runs body(); an exception is printed as "<tag>: <function>: <what>" on stderr and the call
// returns `unknown` (NVML_ERROR_UNKNOWN, CUDA_ERROR_UNKNOWN: both 999).
template <typename Body>
int run_guarded(const char* tag, const char* function, int unknown, Body&& body) noexcept {
    try {
        return body();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s: %s\n", tag, function, e.what());
    } catch (...) {
        std::fprintf(stderr, "%s: %s: unknown exception\n", tag, function);
    }
    return unknown;
}

} // namespace withgpu::sim
