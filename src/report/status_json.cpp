#include "report/status_json.hpp"

#include "report/json_text.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

#include <cmath>
#include <ctime>
#include <optional>

namespace withgpu::report {

namespace {

template <typename T> nlohmann::json or_null(const std::optional<T>& value) {
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json text_or_null(const std::optional<std::string>& text) {
    return text ? text_json(*text) : nlohmann::json(nullptr);
}

nlohmann::json mib_or_null(const std::optional<std::uint64_t>& bytes) {
    return bytes ? nlohmann::json(*bytes / units::mib) : nlohmann::json(nullptr);
}

nlohmann::json watts_or_null(const std::optional<double>& watts) {
    // One decimal is what NVML's milliwatts honestly give after averaging.
    return watts ? nlohmann::json(static_cast<double>(std::lround(*watts * 10.0)) / 10.0)
                 : nlohmann::json(nullptr);
}

nlohmann::json claim_json(const gpu::ClaimHolder& holder) {
    return {
        {"pid", or_null(holder.pid)},
        {"supervisor_pid", or_null(holder.supervisor_pid)},
        {"user", text_or_null(holder.user)},
        {"command", text_or_null(holder.command)},
        {"since", holder.since_unix ? nlohmann::json(format_utc(*holder.since_unix)) : nullptr},
        {"since_unix", or_null(holder.since_unix)},
        {"slurm_job", text_or_null(holder.slurm_job)},
        {"misplaced",
         [&] {
             nlohmann::json list = nlohmann::json::array();
             for (const auto& item : holder.misplaced) {
                 list.push_back(text_json(item)); // the record's writer chose it: sanitised
             }
             return list;
         }()},
    };
}

// What --hold keeps on the GPU: {"bytes": N, "since": "2026-..."}, or null.
nlohmann::json hold_json(const gpu::ClaimHolder* holder) {
    if (holder == nullptr || !holder->hold_bytes) {
        return nullptr;
    }
    return {{"bytes", *holder->hold_bytes},
            {"since",
             holder->hold_since_unix ? nlohmann::json(format_utc(*holder->hold_since_unix))
                                     : nlohmann::json(nullptr)}};
}

const char* kind_name(gpu::Process::Kind kind) {
    switch (kind) {
    case gpu::Process::Kind::compute:
        return "compute";
    case gpu::Process::Kind::graphics:
        return "graphics";
    case gpu::Process::Kind::compute_and_graphics:
        return "compute+graphics";
    }
    return "compute";
}

nlohmann::json processes_json(const std::optional<std::vector<gpu::Process>>& processes) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& p : processes.value_or(std::vector<gpu::Process>{})) {
        list.push_back({
            {"pid", p.pid},
            {"type", kind_name(p.kind)},
            {"used_memory_mib", mib_or_null(p.used_memory_bytes)},
            {"user", text_or_null(p.user)},
            {"command", text_or_null(p.command)},
            {"squatter", p.squatter},
        });
    }
    return list;
}

nlohmann::json gpu_json(const gpu::GpuSnapshot& g, const gpu::ClaimMap& claims) {
    auto claim = claims.find(g.uuid);
    return {
        {"index", g.index},
        {"uuid", text_json(g.uuid)},
        {"name", text_json(g.name)},
        {"pci_bus_id", text_json(g.pci_bus_id)},
        {"minor_number", or_null(g.minor_number)},
        {"error", text_or_null(g.error)},
        {"memory_total_mib", mib_or_null(g.memory_total_bytes)},
        {"memory_used_mib", mib_or_null(g.memory_used_bytes)},
        {"memory_free_mib", mib_or_null(g.memory_free_bytes)},
        {"utilization_percent", or_null(g.utilization_percent)},
        {"temperature_c", or_null(g.temperature_c)},
        {"power_w", watts_or_null(g.power_w)},
        {"power_limit_w", watts_or_null(g.power_limit_w)},
        {"processes_known", g.processes.has_value()},
        {"processes", processes_json(g.processes)},
        {"claim", claim != claims.end() ? claim_json(claim->second) : nullptr},
        {"hold", hold_json(claim != claims.end() ? &claim->second : nullptr)},
    };
}

nlohmann::json queue_json(const std::vector<queue::Ticket>& queue) {
    nlohmann::json waiting = nlohmann::json::array();
    unsigned position = 0;
    for (const auto& t : queue) {
        waiting.push_back({
            {"position", ++position},
            {"pid", t.pid},
            {"user", text_json(t.user)},
            {"command", text_json(t.command)},
            {"gpus_needed", t.request.min_gpus},
            {"gpus_wanted", t.request.max_gpus},
            {"since", format_utc(t.since_unix)},
            {"since_unix", t.since_unix},
        });
    }
    return waiting;
}

} // namespace

std::string format_utc(std::int64_t unix_seconds) {
    const auto t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                       tm.tm_year + 1900,
                       tm.tm_mon + 1,
                       tm.tm_mday,
                       tm.tm_hour,
                       tm.tm_min,
                       tm.tm_sec);
}

nlohmann::json status_json(const gpu::MachineSnapshot& machine,
                           const gpu::ClaimMap& claims,
                           const std::vector<queue::Ticket>& queue) {
    nlohmann::json gpus = nlohmann::json::array();
    for (const auto& g : machine.gpus) {
        gpus.push_back(gpu_json(g, claims));
    }
    return {
        {"version", json_format_version},
        {"driver_version",
         machine.driver_version.empty() ? nlohmann::json(nullptr)
                                        : text_json(machine.driver_version)},
        {"gpus", std::move(gpus)},
        {"queue", queue_json(queue)},
    };
}

} // namespace withgpu::report
