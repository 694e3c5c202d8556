#include "report/status_report.hpp"

#include "util/units.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>

namespace withgpu::report {

namespace {

template <typename T> nlohmann::json or_null(const std::optional<T>& value) {
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
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
        {"user", or_null(holder.user)},
        {"command", or_null(holder.command)},
        {"since", holder.since_unix ? nlohmann::json(format_utc(*holder.since_unix)) : nullptr},
        {"since_unix", or_null(holder.since_unix)},
    };
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

std::string pad(std::string text, std::size_t width) {
    // Pads by characters, not bytes, so that "°" does not skew the columns.
    std::size_t chars = 0;
    for (char c : text) {
        chars += (static_cast<unsigned char>(c) & 0xC0U) != 0x80U ? 1U : 0U;
    }
    if (chars < width) {
        text.append(width - chars, ' ');
    }
    return text;
}

std::string memory_cell(const gpu::GpuSnapshot& g) {
    if (!g.memory_total_bytes) {
        return "?";
    }
    const std::string used = g.memory_used_bytes ? units::format_size(*g.memory_used_bytes) : "?";
    return fmt::format("{} / {}", used, units::format_size(*g.memory_total_bytes));
}

std::string power_cell(const gpu::GpuSnapshot& g) {
    if (!g.power_w && !g.power_limit_w) {
        return "n/a";
    }
    const std::string draw = g.power_w ? fmt::format("{:.0f}", *g.power_w) : "?";
    const std::string limit = g.power_limit_w ? fmt::format("{:.0f}", *g.power_limit_w) : "?";
    return fmt::format("{}/{} W", draw, limit);
}

std::string claim_cell(const gpu::ClaimMap& claims, const std::string& uuid, std::int64_t now) {
    auto it = claims.find(uuid);
    if (it == claims.end()) {
        return "free";
    }
    const gpu::ClaimHolder& h = it->second;
    std::string text = "claimed by " + h.user.value_or("?");
    if (h.pid) {
        text += fmt::format(" (pid {})", *h.pid);
    }
    if (h.since_unix && now >= *h.since_unix) {
        text += " for " + units::format_duration(std::chrono::seconds(now - *h.since_unix));
    }
    return text;
}

std::string queue_table(const std::vector<queue::Ticket>& queue, std::int64_t now) {
    if (queue.empty()) {
        return {};
    }
    std::string out = fmt::format("\nWaiting ({}):\n", queue.size());
    unsigned position = 0;
    for (const auto& t : queue) {
        const std::string gpus =
            t.request.max_gpus > t.request.min_gpus
                ? fmt::format("{}-{} GPUs", t.request.min_gpus, t.request.max_gpus)
                : fmt::format("{} GPU{}", t.request.min_gpus, t.request.min_gpus == 1 ? "" : "s");
        out += fmt::format("  {:>3}. {:<10} pid {:<8} {:<10} for {:<8} {}\n",
                           ++position,
                           t.user.empty() ? "?" : t.user,
                           t.pid,
                           gpus,
                           units::format_duration(
                               std::chrono::seconds(std::max<std::int64_t>(0, now - t.since_unix))),
                           t.command);
    }
    return out;
}

nlohmann::json queue_json(const std::vector<queue::Ticket>& queue) {
    nlohmann::json waiting = nlohmann::json::array();
    unsigned position = 0;
    for (const auto& t : queue) {
        waiting.push_back({
            {"position", ++position},
            {"pid", t.pid},
            {"user", t.user},
            {"command", t.command},
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
        nlohmann::json processes = nlohmann::json::array();
        for (const auto& p : g.processes.value_or(std::vector<gpu::Process>{})) {
            processes.push_back({
                {"pid", p.pid},
                {"type", kind_name(p.kind)},
                {"used_memory_mib", mib_or_null(p.used_memory_bytes)},
                {"user", or_null(p.user)},
                {"command", or_null(p.command)},
            });
        }
        auto claim = claims.find(g.uuid);
        gpus.push_back({
            {"index", g.index},
            {"uuid", g.uuid},
            {"name", g.name},
            {"pci_bus_id", g.pci_bus_id},
            {"error", or_null(g.error)},
            {"memory_total_mib", mib_or_null(g.memory_total_bytes)},
            {"memory_used_mib", mib_or_null(g.memory_used_bytes)},
            {"memory_free_mib", mib_or_null(g.memory_free_bytes)},
            {"utilization_percent", or_null(g.utilization_percent)},
            {"temperature_c", or_null(g.temperature_c)},
            {"power_w", watts_or_null(g.power_w)},
            {"power_limit_w", watts_or_null(g.power_limit_w)},
            {"processes_known", g.processes.has_value()},
            {"processes", std::move(processes)},
            {"claim", claim != claims.end() ? claim_json(claim->second) : nullptr},
        });
    }
    return {
        {"version", json_format_version},
        {"driver_version",
         machine.driver_version.empty() ? nlohmann::json(nullptr)
                                        : nlohmann::json(machine.driver_version)},
        {"gpus", std::move(gpus)},
        {"queue", queue_json(queue)},
    };
}

std::string status_table(const gpu::MachineSnapshot& machine,
                         const gpu::ClaimMap& claims,
                         const std::vector<queue::Ticket>& queue,
                         std::int64_t now_unix) {
    std::string out = fmt::format("NVIDIA driver {}, {} GPU{}\n",
                                  machine.driver_version.empty() ? "?" : machine.driver_version,
                                  machine.gpus.size(),
                                  machine.gpus.size() == 1 ? "" : "s");
    if (machine.gpus.empty()) {
        return out;
    }
    std::size_t name_width = 4;
    for (const auto& g : machine.gpus) {
        name_width = std::max(name_width, std::min<std::size_t>(g.name.size(), 32));
    }
    out += fmt::format("{}  {}  {}  {}  {}  {}  {}\n",
                       pad("GPU", 3),
                       pad("NAME", name_width),
                       pad("MEMORY USED", 19),
                       pad("UTIL", 4),
                       pad("TEMP", 5),
                       pad("POWER", 11),
                       "CLAIM");
    for (const auto& g : machine.gpus) {
        std::string name = g.name.size() > 32 ? g.name.substr(0, 31) + "~" : g.name;
        if (g.error) {
            out += fmt::format("{}  {}  error: {}\n",
                               pad(std::to_string(g.index), 3),
                               pad(name.empty() ? "?" : name, name_width),
                               *g.error);
            continue;
        }
        out += fmt::format(
            "{}  {}  {}  {}  {}  {}  {}\n",
            pad(std::to_string(g.index), 3),
            pad(name, name_width),
            pad(memory_cell(g), 19),
            pad(g.utilization_percent ? fmt::format("{}%", *g.utilization_percent) : "n/a", 4),
            pad(g.temperature_c ? fmt::format("{}°C", *g.temperature_c) : "n/a", 5),
            pad(power_cell(g), 11),
            claim_cell(claims, g.uuid, now_unix));
        if (!g.processes) {
            out += "     processes: unknown\n";
            continue;
        }
        for (const auto& p : *g.processes) {
            out += fmt::format("     pid {:<8} {:<10} {:<9} {}\n",
                               p.pid,
                               p.user.value_or("?"),
                               p.used_memory_bytes ? units::format_size(*p.used_memory_bytes) : "?",
                               p.command.value_or("?"));
        }
    }
    out += queue_table(queue, now_unix);
    return out;
}

} // namespace withgpu::report
