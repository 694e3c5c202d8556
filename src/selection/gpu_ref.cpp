#include "selection/gpu_ref.hpp"

#include "util/strings.hpp"
#include "util/text.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace withgpu::selection {
namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> items;
    while (true) {
        const std::size_t comma = text.find(separator);
        items.push_back(text.substr(0, comma));
        if (comma == std::string_view::npos) {
            return items;
        }
        text.remove_prefix(comma + 1);
    }
}

std::optional<unsigned> parse_index(std::string_view text) {
    if (text.empty()) {
        return std::nullopt;
    }
    for (const char c : text) {
        if (!is_digit(c)) {
            return std::nullopt;
        }
    }
    unsigned value = 0;
    const auto* last = text.data() + text.size();
    const auto [end, ec] = std::from_chars(text.data(), last, value);
    if (ec != std::errc{} || end != last) {
        return std::nullopt;
    }
    return value;
}

// "GPU-" followed by at least one hex digit or dash: a full UUID or a prefix of one.
bool is_uuid_ref(std::string_view text) {
    if (!text::istarts_with(text, "GPU-") || text.size() == 4) {
        return false;
    }
    for (const char c : text.substr(4)) {
        if (!is_hex(c) && c != '-') {
            return false;
        }
    }
    return true;
}

bool all_hex(std::string_view text) {
    for (const char c : text) {
        if (!is_hex(c)) {
            return false;
        }
    }
    return true;
}

// "[domain:]bus:device.function" -> "DDDDDDDD:BB:DD.F"; nullopt when it is not a bus id.
std::optional<std::string> normalise_bus_id(std::string_view text) {
    const auto parts = split(text, ':');
    std::string_view domain = "0";
    std::string_view bus;
    std::string_view device_function;
    if (parts.size() == 3) {
        domain = parts[0];
        bus = parts[1];
        device_function = parts[2];
    } else if (parts.size() == 2) {
        bus = parts[0];
        device_function = parts[1];
    } else {
        return std::nullopt;
    }
    const std::size_t dot = device_function.find('.');
    if (dot == std::string_view::npos) {
        return std::nullopt;
    }
    const std::string_view device = device_function.substr(0, dot);
    const std::string_view function = device_function.substr(dot + 1);
    if (domain.empty() || domain.size() > 8 || !all_hex(domain) || bus.size() != 2 ||
        !all_hex(bus) || device.size() != 2 || !all_hex(device) || function.size() != 1 ||
        !all_hex(function)) {
        return std::nullopt;
    }
    return fmt::format("{:0>8}:{}:{}.{}",
                       text::to_upper(domain),
                       text::to_upper(bus),
                       text::to_upper(device),
                       text::to_upper(function));
}

std::string accepted_forms(bool allow_names) {
    return fmt::format("use a comma-separated list of NVML indices (0,2), UUIDs or unique UUID "
                       "prefixes (GPU-8a3f...), or PCI bus ids (00000000:17:00.0){}",
                       allow_names ? ", or name:SUBSTRING to match the model name" : "");
}

Result<GpuRef> parse_item(std::string_view item,
                          std::string_view whole,
                          std::string_view option_name,
                          bool allow_names) {
    GpuRef ref;
    ref.text = std::string(item);
    if (item.empty()) {
        return fail(ErrorKind::usage,
                    fmt::format("{} \"{}\": empty item in the list", option_name, whole),
                    accepted_forms(allow_names));
    }
    if (const auto index = parse_index(item)) {
        ref.kind = GpuRef::Kind::index;
        ref.index = *index;
        ref.key = ref.text;
        return ref;
    }
    if (text::istarts_with(item, "name:")) {
        if (!allow_names) {
            return fail(
                ErrorKind::usage,
                fmt::format("{} \"{}\": name: is only valid in --exclude", option_name, item),
                accepted_forms(false));
        }
        const std::string_view substring = text::trim(item.substr(5));
        if (substring.empty()) {
            return fail(ErrorKind::usage,
                        fmt::format("{} \"{}\": name: needs a part of the model name after it",
                                    option_name,
                                    item),
                        "for example name:V100");
        }
        ref.kind = GpuRef::Kind::name_substring;
        ref.key = std::string(substring);
        return ref;
    }
    if (text::istarts_with(item, "MIG-")) {
        return fail(ErrorKind::usage,
                    fmt::format("{} \"{}\": MIG devices are not supported yet", option_name, item),
                    "name the whole GPU by index, UUID (GPU-...) or PCI bus id");
    }
    if (is_uuid_ref(item)) {
        ref.kind = GpuRef::Kind::uuid;
        ref.key = ref.text;
        return ref;
    }
    if (auto bus_id = normalise_bus_id(item)) {
        ref.kind = GpuRef::Kind::pci_bus_id;
        ref.key = std::move(*bus_id);
        return ref;
    }
    return fail(ErrorKind::usage,
                fmt::format("{} \"{}\": not a GPU index, UUID{} or PCI bus id",
                            option_name,
                            item,
                            allow_names ? ", name:SUBSTRING" : ""),
                accepted_forms(allow_names));
}

} // namespace

Result<std::vector<GpuRef>>
parse_gpu_list(std::string_view text, std::string_view option_name, bool allow_names) {
    std::vector<GpuRef> refs;
    for (const std::string_view raw : split(text, ',')) {
        auto ref = parse_item(text::trim(raw), text, option_name, allow_names);
        if (!ref) {
            return tl::unexpected(std::move(ref.error()));
        }
        refs.push_back(std::move(*ref));
    }
    return refs;
}

bool matches(const GpuRef& ref, const gpu::GpuSnapshot& gpu) {
    switch (ref.kind) {
    case GpuRef::Kind::index:
        return gpu.index == ref.index;
    case GpuRef::Kind::uuid:
        return !gpu.uuid.empty() && text::istarts_with(gpu.uuid, ref.key);
    case GpuRef::Kind::pci_bus_id: {
        const auto normalised = normalise_bus_id(gpu.pci_bus_id);
        return normalised ? *normalised == ref.key : text::to_upper(gpu.pci_bus_id) == ref.key;
    }
    case GpuRef::Kind::name_substring:
        return text::icontains(gpu.name, ref.key);
    case GpuRef::Kind::minor_number:
        return gpu.minor_number && *gpu.minor_number == ref.index;
    }
    return false;
}

Result<void> check_unique_prefixes(const std::vector<GpuRef>& refs,
                                   std::string_view option_name,
                                   const gpu::MachineSnapshot& machine) {
    for (const auto& ref : refs) {
        if (ref.kind != GpuRef::Kind::uuid) {
            continue;
        }
        std::vector<std::string> matched;
        for (const auto& gpu : machine.gpus) {
            if (matches(ref, gpu)) {
                matched.push_back(fmt::format("GPU {} ({})", gpu.index, text::printable(gpu.uuid)));
            }
        }
        if (matched.size() > 1) {
            return fail(ErrorKind::usage,
                        fmt::format("{} {} is ambiguous: it matches {}",
                                    option_name,
                                    text::printable(ref.text),
                                    fmt::join(matched, ", ")),
                        "give more of the UUID, so that it names one GPU");
        }
    }
    return {};
}

Result<VisibleDevices> parse_cuda_visible_devices(const std::optional<std::string>& value) {
    VisibleDevices visible;
    if (!value) {
        return visible;
    }
    visible.restricted = true;
    visible.original = *value;
    const std::string_view text = text::trim(*value);
    if (text.empty() || text == "NoDevFiles") {
        return visible;
    }
    for (const std::string_view raw : split(text, ',')) {
        const std::string_view item = text::trim(raw);
        if (text::istarts_with(item, "MIG-")) {
            return fail(ErrorKind::failed,
                        fmt::format("CUDA_VISIBLE_DEVICES names a MIG device; with-gpu does not "
                                    "support MIG yet (CUDA_VISIBLE_DEVICES={})",
                                    visible.original),
                        "unset CUDA_VISIBLE_DEVICES or set it to GPU indices or GPU-... UUIDs; "
                        "with-gpu sets it for the command it runs");
        }
        GpuRef ref;
        ref.text = std::string(item);
        if (is_uuid_ref(item)) {
            ref.kind = GpuRef::Kind::uuid;
            ref.key = ref.text;
        } else if (const auto index = parse_index(item)) {
            ref.kind = GpuRef::Kind::index;
            ref.index = *index;
            ref.key = ref.text;
        } else {
            // CUDA ignores everything from the first invalid item on; a negative index
            // ("-1") is the documented way to hide the rest.
            break;
        }
        visible.refs.push_back(std::move(ref));
    }
    return visible;
}

} // namespace withgpu::selection
