#include "queue/ticket.hpp"

#include <nlohmann/json.hpp>

namespace withgpu::queue {

namespace {

using nlohmann::json;

const char* kind_name(selection::GpuRef::Kind kind) {
    switch (kind) {
    case selection::GpuRef::Kind::index:
        return "index";
    case selection::GpuRef::Kind::uuid:
        return "uuid";
    case selection::GpuRef::Kind::pci_bus_id:
        return "pci_bus_id";
    case selection::GpuRef::Kind::name_substring:
        return "name";
    case selection::GpuRef::Kind::minor_number:
        return "minor_number";
    }
    return "index";
}

selection::GpuRef::Kind kind_from(const std::string& name) {
    if (name == "uuid") {
        return selection::GpuRef::Kind::uuid;
    }
    if (name == "pci_bus_id") {
        return selection::GpuRef::Kind::pci_bus_id;
    }
    if (name == "name") {
        return selection::GpuRef::Kind::name_substring;
    }
    if (name == "index") {
        return selection::GpuRef::Kind::index;
    }
    if (name == "minor_number") {
        return selection::GpuRef::Kind::minor_number;
    }
    throw json::other_error::create(501, "unknown GPU reference kind " + name, nullptr);
}

json refs_json(const std::vector<selection::GpuRef>& refs) {
    json out = json::array();
    for (const auto& r : refs) {
        out.push_back(
            {{"kind", kind_name(r.kind)}, {"text", r.text}, {"index", r.index}, {"key", r.key}});
    }
    return out;
}

std::vector<selection::GpuRef> refs_from(const json& in) {
    std::vector<selection::GpuRef> refs;
    for (const auto& r : in) {
        selection::GpuRef ref;
        ref.kind = kind_from(r.at("kind").get<std::string>());
        ref.text = r.at("text").get<std::string>();
        ref.index = r.at("index").get<unsigned>();
        ref.key = r.at("key").get<std::string>();
        refs.push_back(std::move(ref));
    }
    return refs;
}

template <typename T> json optional_json(const std::optional<T>& value) {
    return value ? json(*value) : json(nullptr);
}

template <typename T> std::optional<T> optional_from(const json& value) {
    return value.is_null() ? std::nullopt : std::optional<T>(value.get<T>());
}

} // namespace

std::string encode(const Ticket& ticket) {
    const selection::Request& r = ticket.request;
    const json doc{
        {"version", 1},
        {"seq", ticket.seq},
        {"pid", ticket.pid},
        {"user", ticket.user},
        {"command", ticket.command},
        {"since", ticket.since_unix},
        {"request",
         {
             {"min_gpus", r.min_gpus},
             {"max_gpus", r.max_gpus},
             {"only", refs_json(r.only)},
             {"exclude", refs_json(r.exclude)},
             {"visible",
              {{"restricted", r.visible.restricted},
               {"refs", refs_json(r.visible.refs)},
               {"original", r.visible.original},
               {"source", r.visible.source}}},
             {"gpu_type", optional_json(r.gpu_type)},
             {"strict_type", r.strict_type},
             {"min_free_bytes", optional_json(r.min_free_bytes)},
             {"max_utilization_percent", optional_json(r.max_utilization_percent)},
             {"max_temperature_c", optional_json(r.max_temperature_c)},
             {"max_power_w", optional_json(r.max_power_w)},
             {"require_idle", r.require_idle},
         }},
    };
    return doc.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<Ticket> decode(std::string_view text) {
    try {
        const json doc = json::parse(text);
        if (doc.at("version").get<int>() != 1) {
            return fail(ErrorKind::environment, "queue ticket of an unknown version");
        }
        Ticket t;
        t.seq = doc.at("seq").get<std::uint64_t>();
        t.pid = doc.at("pid").get<int>();
        t.user = doc.at("user").get<std::string>();
        t.command = doc.at("command").get<std::string>();
        t.since_unix = doc.at("since").get<std::int64_t>();
        const json& r = doc.at("request");
        t.request.min_gpus = r.at("min_gpus").get<unsigned>();
        t.request.max_gpus = r.at("max_gpus").get<unsigned>();
        t.request.only = refs_from(r.at("only"));
        t.request.exclude = refs_from(r.at("exclude"));
        t.request.visible.restricted = r.at("visible").at("restricted").get<bool>();
        t.request.visible.refs = refs_from(r.at("visible").at("refs"));
        t.request.visible.original = r.at("visible").at("original").get<std::string>();
        t.request.visible.source =
            r.at("visible").value("source", std::string("CUDA_VISIBLE_DEVICES"));
        t.request.gpu_type = optional_from<std::string>(r.at("gpu_type"));
        t.request.strict_type = r.at("strict_type").get<bool>();
        t.request.min_free_bytes = optional_from<std::uint64_t>(r.at("min_free_bytes"));
        t.request.max_utilization_percent =
            optional_from<unsigned>(r.at("max_utilization_percent"));
        t.request.max_temperature_c = optional_from<unsigned>(r.at("max_temperature_c"));
        t.request.max_power_w = optional_from<double>(r.at("max_power_w"));
        t.request.require_idle = r.at("require_idle").get<bool>();
        return t;
    } catch (const json::exception& e) {
        return fail(ErrorKind::environment, std::string("unreadable queue ticket: ") + e.what());
    }
}

} // namespace withgpu::queue
