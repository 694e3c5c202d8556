// The project's one error type. Every fallible function returns Result<T>;
// only app/ turns an Error into a message and an exit code (app/exit_code.hpp).
#pragma once

#include <tl/expected.hpp>

#include <string>
#include <utility>

namespace withgpu {

// What kind of failure this is; the front ends map each kind to a documented exit code (the
// CLI) or exception (the library and the Python package).
enum class ErrorKind {
    usage,          // bad flags, bad values, bad configuration (exit 2)
    no_gpu_now,     // nothing suitable is free right now (exit 75)
    timeout,        // --timeout expired (exit 124)
    impossible,     // the request can never be met on this machine (exit 125)
    driver,         // NVML cannot be loaded or read (exit 125)
    failed,         // anything else with-gpu could not do: lock directory, system (exit 125)
    cancelled,      // the caller ended a wait (the CLI: a signal, which it then dies of)
    not_executable, // the command exists but cannot be executed (exit 126)
    not_found,      // the command was not found (exit 127)
};

struct Error {
    ErrorKind kind = ErrorKind::failed;
    std::string message; // what went wrong, with context (file, GPU, call)
    std::string hint;    // what the user can do about it; may be empty
};

template <typename T> using Result = tl::expected<T, Error>;

// Shorthand for `return fail(ErrorKind::usage, "...", "...");`
inline tl::unexpected<Error> fail(ErrorKind kind, std::string message, std::string hint = {}) {
    return tl::unexpected<Error>(Error{kind, std::move(message), std::move(hint)});
}

} // namespace withgpu
