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

template <typename T> json value_json(const std::optional<T>& value) {
    return value ? json(*value) : json(nullptr);
}

template <typename T> json value_json(const T& value) {
    return json(value);
}

// A filter of the ticket's request; a missing one (a ticket of an older with-gpu) keeps its
// default, so that such a waiter is still honoured.
template <typename T>
void value_from(const json& request, const char* name, std::optional<T>& value) {
    const auto it = request.find(name);
    value = it == request.end() || it->is_null() ? std::nullopt : std::optional<T>(it->get<T>());
}

template <typename T> void value_from(const json& request, const char* name, T& value) {
    const auto it = request.find(name);
    if (it != request.end()) {
        value = it->get<T>();
    }
}

} // namespace

std::string encode(const Ticket& ticket) {
    const selection::Request& r = ticket.request;
    json doc{
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
         }},
    };
    selection::for_each_filter(
        r, [&](const char* name, const auto& value) { doc["request"][name] = value_json(value); });
    return doc.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<Ticket> decode(std::string_view text) {
    try {
        const json doc = json::parse(text);
        if (doc.at("version").get<int>() != 1) {
            return fail(ErrorKind::failed, "queue ticket of an unknown version");
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
        selection::for_each_filter(
            t.request, [&](const char* name, auto& value) { value_from(r, name, value); });
        return t;
    } catch (const json::exception& e) {
        return fail(ErrorKind::failed, std::string("unreadable queue ticket: ") + e.what());
    }
}

} // namespace withgpu::queue
