#include "os/errno_text.hpp"

#include <system_error>

namespace withgpu {

std::string errno_text(int err) {
    return std::system_category().message(err);
}

} // namespace withgpu
