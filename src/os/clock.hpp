// The wall clock, read only by I/O code and app/: pure modules take the time as a value.
#pragma once

#include <cstdint>

namespace withgpu {

// Wall-clock seconds since the epoch: for claim records, tickets and reason texts.
[[nodiscard]] std::int64_t now_unix();

} // namespace withgpu
