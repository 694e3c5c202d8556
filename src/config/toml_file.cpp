#include "config/toml_file.hpp"

#include "config/settings.hpp"
#include "config/toml.hpp"
#include "config/value.hpp"
#include "util/strings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <utility>

namespace withgpu::config {

namespace {

using Kind = Origin::Kind;

std::string position(const std::string& path, const toml::source_region& region) {
    return fmt::format("{}:{}:{}", path, region.begin.line, region.begin.column);
}

std::string_view type_name(const toml::node& node) {
    switch (node.type()) {
    case toml::node_type::string:
        return "a string";
    case toml::node_type::integer:
        return "an integer";
    case toml::node_type::floating_point:
        return "a float";
    case toml::node_type::boolean:
        return "a boolean";
    case toml::node_type::array:
        return "an array";
    case toml::node_type::table:
        return "a table";
    case toml::node_type::date:
        return "a date";
    case toml::node_type::time:
        return "a time";
    case toml::node_type::date_time:
        return "a date-time";
    case toml::node_type::none:
        break;
    }
    return "nothing";
}

std::vector<std::string_view> setting_names() {
    std::vector<std::string_view> names;
    for (const auto& setting : settings()) {
        names.push_back(setting.name);
    }
    return names;
}

// Adds "FILE:LINE:COLUMN: name: " to a message about one node, and the setting's example as
// hint when the parser gave none.
Error at_node(const std::string& path,
              const toml::node& node,
              const Setting& setting,
              Error error) {
    error.kind = ErrorKind::usage;
    error.message =
        fmt::format("{}: {}: {}", position(path, node.source()), setting.name, error.message);
    if (error.hint.empty()) {
        error.hint = fmt::format("e.g. {} = {}", setting.name, setting.toml_example);
    }
    return error;
}

Error wrong_type(const std::string& path, const toml::node& node, const Setting& setting) {
    return at_node(
        path,
        node,
        setting,
        Error{ErrorKind::usage,
              fmt::format("expected {}, got {}", expected_form(setting), type_name(node)),
              {}});
}

Result<Checked>
convert_array(const std::string& path, const toml::array& array, const Setting& setting) {
    if (array.empty()) {
        return tl::unexpected(
            at_node(path,
                    array,
                    setting,
                    Error{ErrorKind::usage, "the list is empty", "leave the key out instead"}));
    }
    std::vector<std::string> items;
    std::vector<selection::GpuRef> refs;
    for (const auto& element : array) {
        Result<Checked> item;
        if (const auto* integer = element.as_integer()) {
            item = check_integer(setting, integer->get());
        } else if (const auto* string = element.as_string()) {
            item = check_text(setting, string->get());
        } else {
            return tl::unexpected(
                at_node(path,
                        element,
                        setting,
                        Error{ErrorKind::usage,
                              fmt::format("expected GPU indices or strings in the list, got {}",
                                          type_name(element)),
                              {}}));
        }
        if (!item) {
            return tl::unexpected(at_node(path, element, setting, item.error()));
        }
        items.push_back(std::move(item->text));
        auto& more = std::get<std::vector<selection::GpuRef>>(item->parsed);
        refs.insert(refs.end(), more.begin(), more.end());
    }
    return Checked{text::join(items, ","), std::move(refs)};
}

Result<Checked>
convert_node(const std::string& path, const toml::node& node, const Setting& setting) {
    const auto* integer = node.as_integer();
    const auto* string = node.as_string();
    std::optional<Result<Checked>> checked; // nullopt: the node has the wrong type
    switch (setting.kind) {
    case ValueKind::whole_number:
        if (integer) {
            checked = check_integer(setting, integer->get());
        }
        break;
    case ValueKind::boolean:
        if (const auto* boolean = node.as_boolean()) {
            checked = check_boolean(boolean->get());
        }
        break;
    case ValueKind::text:
    case ValueKind::absolute_path:
    case ValueKind::hold_amount:
        if (string) {
            checked = check_text(setting, string->get());
        }
        break;
    case ValueKind::size:
    case ValueKind::duration:
        if (string) {
            checked = check_text(setting, string->get());
        } else if (integer) {
            checked = check_integer(setting, integer->get());
        }
        break;
    case ValueKind::gpu_list:
        if (string) {
            checked = check_text(setting, string->get());
        } else if (const auto* array = node.as_array()) {
            return convert_array(path, *array, setting);
        }
        break;
    }
    if (!checked) {
        return tl::unexpected(wrong_type(path, node, setting));
    }
    if (!*checked) {
        return tl::unexpected(at_node(path, node, setting, checked->error()));
    }
    return std::move(**checked);
}

// A table's entries in file order, so that the first error reported is the first in the file.
std::vector<std::pair<const toml::key*, const toml::node*>>
in_file_order(const toml::table& table) {
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (const auto& [key, node] : table) {
        entries.emplace_back(&key, &node);
    }
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        const auto& x = a.first->source().begin;
        const auto& y = b.first->source().begin;
        return x.line != y.line ? x.line < y.line : x.column < y.column;
    });
    return entries;
}

Error placement_error(const Setting& setting,
                      const std::string& where,
                      const std::optional<std::string>& profile,
                      std::string_view system_path) {
    std::string message =
        profile
            ? fmt::format(
                  "{}: {} is not allowed in a profile (profiles.{})", where, setting.name, *profile)
            : fmt::format(
                  "{}: {} is only allowed in the system configuration file", where, setting.name);
    std::string hint;
    if (setting.name == "lock_dir") {
        hint = fmt::format("set lock_dir in [defaults] of {} so that every user meets in one "
                           "lock directory; for a single run use WITH_GPU_LOCK_DIR or --lock-dir",
                           system_path);
    } else if (setting.name == "banned") {
        hint = fmt::format("banned GPUs are set by the administrator in [defaults] of {}; to "
                           "avoid a GPU yourself use exclude",
                           system_path);
    }
    return Error{ErrorKind::usage, std::move(message), std::move(hint)};
}

struct TableContext {
    const ConfigFile& file;
    FileRole role;
    std::optional<std::string> profile; // nullopt: [defaults]
    std::string_view system_path;
};

Result<Entry>
parse_entry(const TableContext& context, const toml::key& toml_key, const toml::node& node) {
    const std::string where = position(context.file.path, toml_key.source());
    const Setting* setting = find_setting(toml_key.str());
    if (!setting) {
        const auto suggestion = text::closest(toml_key.str(), setting_names());
        return fail(ErrorKind::usage,
                    fmt::format("{}: unknown key \"{}\"", where, toml_key.str()),
                    suggestion ? fmt::format("did you mean {}?", *suggestion)
                               : fmt::format("known keys: {}", fmt::join(setting_names(), ", ")));
    }
    const Places& places = setting->allowed_in;
    const bool allowed = context.profile                    ? places.profiles
                         : context.role == FileRole::system ? places.system_defaults
                                                            : places.user_defaults;
    if (!allowed) {
        return tl::unexpected(
            placement_error(*setting, where, context.profile, context.system_path));
    }
    auto checked = convert_node(context.file.path, node, *setting);
    if (!checked) {
        return tl::unexpected(checked.error());
    }
    Origin origin;
    if (context.profile) {
        origin = {Kind::profile, fmt::format("profile {} ({})", *context.profile, where)};
    } else {
        origin = {context.role == FileRole::system ? Kind::system_file : Kind::user_file, where};
    }
    return Entry{setting,
                 Value{std::move(checked->text), std::move(origin), std::move(checked->parsed)},
                 where};
}

Result<Layer> parse_table(const TableContext& context, const toml::table& table) {
    Layer entries;
    for (const auto& [toml_key, node] : in_file_order(table)) {
        auto entry = parse_entry(context, *toml_key, *node);
        if (!entry) {
            return tl::unexpected(entry.error());
        }
        entries.push_back(std::move(*entry));
    }
    if (auto checked = check_count_group(entries); !checked) {
        return tl::unexpected(checked.error());
    }
    return entries;
}

Result<void> parse_profiles(const TableContext& context,
                            const std::string& where,
                            const toml::node& node,
                            ParsedFile& result) {
    const auto* profiles = node.as_table();
    if (!profiles) {
        return fail(ErrorKind::usage,
                    fmt::format("{}: profiles must be a table of [profiles.NAME] tables, not {}",
                                where,
                                type_name(node)),
                    "write [profiles.NAME] on a line of its own, with key = value lines below it");
    }
    for (const auto& [profile_key, profile_node] : in_file_order(*profiles)) {
        const std::string profile(profile_key->str());
        const auto* table = profile_node->as_table();
        if (!table) {
            return fail(ErrorKind::usage,
                        fmt::format("{}: profiles.{} must be a table, not {}",
                                    position(context.file.path, profile_key->source()),
                                    profile,
                                    type_name(*profile_node)),
                        fmt::format("write [profiles.{}] on a line of its own, with key = value "
                                    "lines below it",
                                    profile));
        }
        TableContext inner = context;
        inner.profile = profile;
        auto entries = parse_table(inner, *table);
        if (!entries) {
            return tl::unexpected(entries.error());
        }
        result.profiles[profile] = std::move(*entries);
    }
    return {};
}

Error misplaced_top_level(const std::string& where, const std::string& name) {
    if (find_setting(name)) {
        return Error{
            ErrorKind::usage,
            fmt::format(
                "{}: {} must be in the [defaults] table or a [profiles.NAME] table", where, name),
            "add a line [defaults] above it"};
    }
    const auto suggestion = text::closest(name, {"defaults", "profiles"});
    return Error{ErrorKind::usage,
                 fmt::format("{}: unknown top-level key \"{}\"", where, name),
                 suggestion ? fmt::format("did you mean {}?", *suggestion)
                            : std::string("a configuration file holds a [defaults] table and "
                                          "[profiles.NAME] tables")};
}

} // namespace

Result<ParsedFile> parse_file(const ConfigFile& file, FileRole role, std::string_view system_path) {
    const toml::parse_result parsed = toml::parse(file.text, file.path);
    if (!parsed) {
        const auto& error = parsed.error();
        return fail(ErrorKind::usage,
                    fmt::format("{}: {}", position(file.path, error.source()), error.description()),
                    "a configuration file is TOML: a [defaults] table and [profiles.NAME] tables "
                    "of key = value lines");
    }
    const TableContext context{file, role, std::nullopt, system_path};
    ParsedFile result;
    for (const auto& [toml_key, node] : in_file_order(parsed.table())) {
        const std::string where = position(file.path, toml_key->source());
        const std::string name(toml_key->str());
        if (name == "defaults") {
            const auto* table = node->as_table();
            if (!table) {
                return fail(
                    ErrorKind::usage,
                    fmt::format("{}: defaults must be a table, not {}", where, type_name(*node)),
                    "write [defaults] on a line of its own, with key = value lines "
                    "below it");
            }
            auto entries = parse_table(context, *table);
            if (!entries) {
                return tl::unexpected(entries.error());
            }
            result.defaults = std::move(*entries);
        } else if (name == "profiles") {
            if (auto profiles = parse_profiles(context, where, *node, result); !profiles) {
                return tl::unexpected(profiles.error());
            }
        } else {
            return tl::unexpected(misplaced_top_level(where, name));
        }
    }
    return result;
}

bool toml_example_is_accepted(const Setting& setting) {
    const std::string document = fmt::format("{} = {}", setting.name, setting.toml_example);
    const auto parsed = toml::parse(document);
    if (!parsed) {
        return false;
    }
    const auto* node = parsed.table().get(setting.name);
    return node != nullptr && convert_node("example", *node, setting).has_value();
}

} // namespace withgpu::config
