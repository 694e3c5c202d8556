// What the library's calls start from besides the caller's request: the process environment
// and the installation's fixed paths. The public functions use this process's; the tests pass
// their own (a system configuration file in a temporary directory) through these overloads.
#pragma once

#include "core/environment.hpp"
#include "with_gpu/with_gpu.hpp"

#include <string>

namespace with_gpu::detail {

struct Context {
    withgpu::core::ProcessEnvironment env = withgpu::core::ProcessEnvironment::current();
    withgpu::core::Installation installation{};
};

[[nodiscard]] Lease
acquire(const Request& request, const WaitOptions& wait, const Context& context);
[[nodiscard]] std::string would_choose_json(const Request& request, const Context& context);
[[nodiscard]] std::string status_json(const Request& request, const Context& context);

// The internal error, thrown as the public one.
[[noreturn]] void raise(const withgpu::Error& error);

} // namespace with_gpu::detail
