// libFuzzer's entry point for one target, chosen at compile time with
// -DWITH_GPU_FUZZ_TARGET="name" (CMake option WITH_GPU_LIBFUZZER, clang only; see README.md).
#include "targets.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

#ifndef WITH_GPU_FUZZ_TARGET
#error "define WITH_GPU_FUZZ_TARGET as the target's name"
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const withgpu::fuzz::Target* const target =
        withgpu::fuzz::find_target(WITH_GPU_FUZZ_TARGET);
    if (target == nullptr) {
        withgpu::fuzz::violation(WITH_GPU_FUZZ_TARGET, "no such target");
    }
    target->run(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}
