#include "os/clock.hpp"

#include <chrono>

namespace withgpu {

std::int64_t now_unix() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

} // namespace withgpu
