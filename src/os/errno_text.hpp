// The words for an errno value in messages.
#pragma once

#include <string>

namespace withgpu {

// "Permission denied": the C library's text for `err`, as strerror(3) gives it (but
// thread-safe). Every message that quotes a failed system call uses this one form.
[[nodiscard]] std::string errno_text(int err);

} // namespace withgpu
