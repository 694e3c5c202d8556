// The library's plain values: errors, setting values in the command line's text form,
// requests, and the setting table described for callers.
#include "config/setting.hpp"
#include "config/settings.hpp"
#include "library/context.hpp"
#include "util/strings.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace with_gpu {

Error::Error(ErrorKind kind, const std::string& message, std::string hint)
    : std::runtime_error(message), m_kind(kind), m_hint(std::move(hint)) {}

int Error::exit_code() const noexcept {
    switch (m_kind) {
    case ErrorKind::usage:
        return 2;
    case ErrorKind::no_gpu_now:
        return 75;
    case ErrorKind::timeout:
        return 124;
    case ErrorKind::cancelled:
        return 130; // as a shell reports a command that Ctrl-C ended
    case ErrorKind::impossible:
    case ErrorKind::driver:
    case ErrorKind::failed:
        break;
    }
    return 125;
}

namespace detail {

void raise(const withgpu::Error& error) {
    using Internal = withgpu::ErrorKind;
    ErrorKind kind = ErrorKind::failed;
    switch (error.kind) {
    case Internal::usage:
        kind = ErrorKind::usage;
        break;
    case Internal::no_gpu_now:
        kind = ErrorKind::no_gpu_now;
        break;
    case Internal::timeout:
        kind = ErrorKind::timeout;
        break;
    case Internal::impossible:
        kind = ErrorKind::impossible;
        break;
    case Internal::driver:
        kind = ErrorKind::driver;
        break;
    case Internal::cancelled:
        kind = ErrorKind::cancelled;
        break;
    case Internal::failed:
    case Internal::not_executable: // the library runs no command
    case Internal::not_found:
        break;
    }
    std::string message = error.message;
    while (!message.empty() && message.back() == '\n') {
        message.pop_back();
    }
    throw Error(kind, message, error.hint);
}

} // namespace detail

Value::Value(bool value) : m_text(value ? "true" : "false") {}
Value::Value(int value) : m_text(std::to_string(value)) {}
Value::Value(unsigned value) : m_text(std::to_string(value)) {}
Value::Value(long value) : m_text(std::to_string(value)) {}
Value::Value(long long value) : m_text(std::to_string(value)) {}
Value::Value(double value) : m_text(fmt::format("{}", value)) {}
Value::Value(const char* text) : m_text(text == nullptr ? "" : text) {}
Value::Value(std::string text) : m_text(std::move(text)) {}
// NOLINTNEXTLINE(performance-unnecessary-value-param): the public header's signature (ABI)
Value::Value(std::vector<std::string> items) : m_text(withgpu::text::join(items, ",")) {}
Value::Value(std::initializer_list<std::string> items) : Value(std::vector<std::string>(items)) {}
Value::Value(const std::vector<unsigned>& indices) {
    std::vector<std::string> items;
    items.reserve(indices.size());
    for (unsigned index : indices) {
        items.push_back(std::to_string(index));
    }
    m_text = withgpu::text::join(items, ",");
}

Request::Request(std::initializer_list<std::pair<std::string, Value>> settings) {
    for (const auto& [name, value] : settings) {
        set(name, value);
    }
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): the public header's signature (ABI)
Request& Request::set(std::string name, Value value) {
    auto same = std::find_if(
        m_settings.begin(), m_settings.end(), [&](const auto& s) { return s.first == name; });
    if (same != m_settings.end()) {
        same->second = value.text();
    } else {
        m_settings.emplace_back(std::move(name), value.text());
    }
    return *this;
}

Request& Request::profile(std::string name) {
    m_profile = std::move(name);
    return *this;
}

namespace {

std::string kind_name(withgpu::config::ValueKind kind) {
    using withgpu::config::ValueKind;
    switch (kind) {
    case ValueKind::whole_number:
        return "whole_number";
    case ValueKind::gpu_list:
        return "gpu_list";
    case ValueKind::text:
        return "text";
    case ValueKind::absolute_path:
        return "absolute_path";
    case ValueKind::boolean:
        return "boolean";
    case ValueKind::size:
        return "size";
    case ValueKind::duration:
        return "duration";
    case ValueKind::hold_amount:
        return "hold_amount";
    }
    return "text";
}

} // namespace

std::vector<SettingInfo> settings() {
    std::vector<SettingInfo> out;
    for (const auto& setting : withgpu::config::settings()) {
        if (!setting.allowed_in.command_line) {
            continue; // the administrator's (banned): no caller gives it
        }
        out.push_back({std::string(withgpu::config::keyword(setting)),
                       kind_name(setting.kind),
                       std::string(setting.builtin),
                       withgpu::config::help_text(setting),
                       std::string(setting.example)});
    }
    return out;
}

std::string_view version() noexcept {
    return WITH_GPU_VERSION;
}

} // namespace with_gpu
