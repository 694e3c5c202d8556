// The project's one error type. Every fallible function returns Result<T>;
// only app/ turns an Error into a message and an exit code (app/exit_code.hpp).
#pragma once

#include <tl/expected.hpp>

#include <string>
#include <utility>

namespace withgpu {

// What kind of failure this is; app/ maps each kind to a documented exit code.
enum class ErrorKind {
    usage,          // bad flags, bad values, bad configuration (exit 2)
    no_gpu_now,     // nothing suitable is free right now (exit 75)
    timeout,        // --timeout expired (exit 124)
    environment,    // NVML/driver, lock directory, impossible request, internal (exit 125)
    not_executable, // the command exists but cannot be executed (exit 126)
    not_found,      // the command was not found (exit 127)
};

struct Error {
    ErrorKind kind = ErrorKind::environment;
    std::string message; // what went wrong, with context (file, GPU, call)
    std::string hint;    // what the user can do about it; may be empty
};

template <typename T> using Result = tl::expected<T, Error>;

// Shorthand for `return fail(ErrorKind::usage, "...", "...");`
inline tl::unexpected<Error> fail(ErrorKind kind, std::string message, std::string hint = {}) {
    return tl::unexpected<Error>(Error{kind, std::move(message), std::move(hint)});
}

} // namespace withgpu
