#include "config/config.hpp"

#include "gpu/claim.hpp"
#include "selection/gpu_ref.hpp"
#include "util/units.hpp"

#include "config/toml.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>

namespace withgpu::config {

namespace {

using Kind = Origin::Kind;

constexpr std::string_view k_builtin_where = "built-in default";
constexpr std::string_view k_user_path_for_messages = "~/.config/with-gpu/config.toml";

// Administrator-only keys: set in the system file's [defaults], or for one run.
constexpr Places k_admin_or_run{true, false, false, true, true};
// The longest --timeout: one year. Longer is surely a mistake (and would overflow clocks).
constexpr unsigned k_max_timeout_seconds = 8760U * 3600U;
constexpr Places k_system_file_only{true, false, false, false, false};

std::vector<KeyInfo> make_key_table() {
    using VK = ValueKind;
    const Places everywhere{};
    return {
        {"count",
         "WITH_GPU_COUNT",
         "-n/--count",
         VK::whole_number,
         "1",
         everywhere,
         1,
         UINT_MAX,
         '\0',
         false,
         "2",
         "2",
         "Exactly N GPUs"},
        {"min_gpus",
         "WITH_GPU_MIN_GPUS",
         "--min-gpus",
         VK::whole_number,
         "",
         everywhere,
         1,
         UINT_MAX,
         '\0',
         false,
         "2",
         "2",
         "At least N GPUs (max_gpus defaults to it)"},
        {"max_gpus",
         "WITH_GPU_MAX_GPUS",
         "--max-gpus",
         VK::whole_number,
         "",
         everywhere,
         1,
         UINT_MAX,
         '\0',
         false,
         "4",
         "4",
         "Up to M GPUs if that many are free"},
        {"gpu",
         "WITH_GPU_GPU",
         "--gpu",
         VK::gpu_list,
         "",
         everywhere,
         0,
         UINT_MAX,
         '\0',
         false,
         "0,2",
         "[0, 2]",
         "Only these GPUs: NVML indices, UUIDs or PCI bus ids"},
        {"exclude",
         "WITH_GPU_EXCLUDE",
         "--exclude",
         VK::gpu_list,
         "",
         everywhere,
         0,
         UINT_MAX,
         '\0',
         true,
         "0,name:T4",
         "[0, \"name:T4\"]",
         "Never these GPUs (as gpu, or name:SUBSTRING)"},
        {"gpu_type",
         "WITH_GPU_GPU_TYPE",
         "--gpu-type",
         VK::text,
         "",
         everywhere,
         0,
         UINT_MAX,
         '\0',
         false,
         "A100",
         "\"A100\"",
         "Prefer GPUs whose name contains this"},
        {"strict",
         "WITH_GPU_STRICT",
         "--strict",
         VK::boolean,
         "",
         everywhere,
         0,
         UINT_MAX,
         '\0',
         false,
         "true",
         "true",
         "With gpu_type: use nothing else"},
        {"min_memory",
         "WITH_GPU_MIN_MEMORY",
         "--min-memory",
         VK::size,
         "2048",
         everywhere,
         0,
         UINT_MAX,
         '\0',
         false,
         "20G",
         "\"20G\"",
         "At least this much free memory (a bare number is MiB)"},
        {"max_util",
         "WITH_GPU_MAX_UTIL",
         "--max-util",
         VK::whole_number,
         "",
         everywhere,
         0,
         100,
         '%',
         false,
         "10",
         "10",
         "At most this GPU utilisation, in percent"},
        {"max_temp",
         "WITH_GPU_MAX_TEMP",
         "--max-temp",
         VK::whole_number,
         "",
         everywhere,
         0,
         UINT_MAX,
         'C',
         false,
         "80",
         "80",
         "At most this temperature, in degrees Celsius"},
        {"max_power",
         "WITH_GPU_MAX_POWER",
         "--max-power",
         VK::whole_number,
         "",
         everywhere,
         0,
         UINT_MAX,
         'W',
         false,
         "250",
         "250",
         "At most this power draw, in watts"},
        {"require_idle",
         "WITH_GPU_REQUIRE_IDLE",
         "--require-idle",
         VK::boolean,
         "",
         everywhere,
         0,
         UINT_MAX,
         '\0',
         false,
         "true",
         "true",
         "No compute or graphics process at all"},
        {"wait",
         "WITH_GPU_WAIT",
         "--wait",
         VK::boolean,
         "",
         everywhere,
         0,
         UINT_MAX,
         '\0',
         false,
         "true",
         "true",
         "Wait until suitable GPUs are free instead of exiting 75"},
        {"timeout",
         "WITH_GPU_TIMEOUT",
         "--timeout",
         VK::duration,
         "",
         everywhere,
         1,
         k_max_timeout_seconds,
         '\0',
         false,
         "5m",
         "\"5m\"",
         "Give up waiting after this long (a bare number is seconds)"},
        {"poll",
         "WITH_GPU_POLL",
         "--poll",
         VK::duration,
         "2s",
         everywhere,
         1,
         UINT_MAX,
         '\0',
         false,
         "10s",
         "\"10s\"",
         "While waiting, look again this often"},
        {"lock_dir",
         "WITH_GPU_LOCK_DIR",
         "--lock-dir",
         VK::absolute_path,
         gpu::default_lock_dir,
         k_admin_or_run,
         0,
         UINT_MAX,
         '\0',
         false,
         "/var/lib/with-gpu",
         "\"/var/lib/with-gpu\"",
         "Shared claim directory (system file, environment or command line only)"},
        {"banned",
         "",
         "",
         VK::gpu_list,
         "",
         k_system_file_only,
         0,
         UINT_MAX,
         '\0',
         true,
         "name:T4,3",
         "[\"name:T4\", 3]",
         "GPUs nobody may use (system file only)"},
        {"nvml_library",
         "WITH_GPU_NVML_LIBRARY",
         "--nvml-library",
         VK::text,
         "",
         everywhere,
         0,
         UINT_MAX,
         '\0',
         false,
         "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
         "\"/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1\"",
         "Load NVML from this path"},
    };
}

// ---- small text helpers

char to_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

char to_upper(char c) {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

std::string_view trim(std::string_view text) {
    constexpr std::string_view spaces = " \t\r\n";
    const auto first = text.find_first_not_of(spaces);
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = text.find_last_not_of(spaces);
    return text.substr(first, last - first + 1);
}

std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> items;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto comma = text.find(',', start);
        const auto end = comma == std::string_view::npos ? text.size() : comma;
        if (const auto item = trim(text.substr(start, end - start)); !item.empty()) {
            items.emplace_back(item);
        }
        start = end + 1;
    }
    return items;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) {
            out += separator;
        }
        out += item;
    }
    return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            const std::size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
            row[j] = std::min({above + 1, row[j - 1] + 1, substitution});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// The closest candidate within a small distance ("max_utl" -> "max_util"); dashes count as
// underscores so that flag spellings ("min-memory") are recognised.
std::optional<std::string_view> closest(std::string_view word,
                                        const std::vector<std::string_view>& candidates) {
    std::string normalised;
    for (const char c : word) {
        normalised += c == '-' ? '_' : to_lower(c);
    }
    std::optional<std::string_view> best;
    std::size_t best_distance = std::max<std::size_t>(1, std::min<std::size_t>(2, word.size() / 3));
    for (const auto candidate : candidates) {
        const auto distance = edit_distance(normalised, candidate);
        if (distance <= best_distance && (!best || distance < best_distance)) {
            best = candidate;
            best_distance = distance;
        }
    }
    return best;
}

std::vector<std::string_view> key_names() {
    std::vector<std::string_view> names;
    for (const auto& key : keys()) {
        names.push_back(key.name);
    }
    return names;
}

// ---- checking one value

// The bound a value broke: "at least 1" for one below it, "at most 4294967295" for one above
// a key with no maximum of its own, "0 to 100" for a key with both bounds.
std::string range_text(const KeyInfo& key, bool too_large) {
    if (key.maximum == UINT_MAX) {
        return too_large ? fmt::format("at most {}", key.maximum)
                         : fmt::format("at least {}", key.minimum);
    }
    return fmt::format("{} to {}", key.minimum, key.maximum);
}

Result<std::string> check_range(const KeyInfo& key, std::int64_t value) {
    if (value < static_cast<std::int64_t>(key.minimum) ||
        value > static_cast<std::int64_t>(key.maximum)) {
        return fail(ErrorKind::usage,
                    fmt::format("{} is out of range ({})",
                                value,
                                range_text(key, value > static_cast<std::int64_t>(key.maximum))));
    }
    return std::to_string(value);
}

Result<std::string> normalise_list(const KeyInfo& key, std::string_view text) {
    auto refs = selection::parse_gpu_list(text, "item", key.names_allowed);
    if (!refs) {
        return tl::unexpected(refs.error());
    }
    std::vector<std::string> items;
    for (const auto& ref : *refs) {
        items.push_back(ref.text);
    }
    return join(items, ",");
}

// Checks text as written in the environment, on the command line or in a TOML string, and
// returns it in the form the command-line parsers accept. Messages carry no location; hints
// are left empty where the caller's example fits better.
Result<std::string> normalise_text(const KeyInfo& key, std::string_view raw) {
    const std::string_view text = trim(raw);
    switch (key.kind) {
    case ValueKind::whole_number: {
        std::string_view digits = text;
        if (key.unit != '\0' && !digits.empty() &&
            (digits.back() == key.unit || digits.back() == to_lower(key.unit))) {
            digits.remove_suffix(1);
        }
        const auto value = units::parse_unsigned(digits, "number");
        if (!value) {
            if (!digits.empty() &&
                digits.find_first_not_of("0123456789") == std::string_view::npos) {
                return fail(ErrorKind::usage,
                            fmt::format("{} is out of range ({})", digits, range_text(key, true)));
            }
            return fail(ErrorKind::usage, fmt::format("\"{}\" is not a whole number", raw));
        }
        return check_range(key, static_cast<std::int64_t>(*value));
    }
    case ValueKind::boolean: {
        std::string lower;
        for (const char c : text) {
            lower += to_lower(c);
        }
        if (lower == "1" || lower == "true" || lower == "yes" || lower == "on") {
            return std::string("true");
        }
        if (lower == "0" || lower == "false" || lower == "no" || lower == "off") {
            return std::string("false");
        }
        return fail(ErrorKind::usage,
                    fmt::format("\"{}\" is not a boolean (use 1, 0, true, false, yes, no, on or "
                                "off)",
                                raw));
    }
    case ValueKind::text:
        if (raw.empty()) {
            return fail(ErrorKind::usage, "must not be empty");
        }
        return std::string(raw); // paths and names are kept exactly, spaces included
    case ValueKind::absolute_path:
        if (raw.empty()) {
            return fail(ErrorKind::usage, "must not be empty");
        }
        if (raw.front() != '/') {
            // Relative to the directory with-gpu starts in, launches from different
            // directories would not meet.
            return fail(ErrorKind::usage,
                        fmt::format("\"{}\" is not an absolute path", raw),
                        fmt::format("a relative path would depend on the directory with-gpu "
                                    "starts in; use an absolute path, e.g. {}",
                                    key.example));
        }
        return std::string(raw);
    case ValueKind::size: {
        if (auto bytes = units::parse_size(text); !bytes) {
            return tl::unexpected(bytes.error());
        }
        return std::string(text);
    }
    case ValueKind::duration: {
        const auto duration = units::parse_duration(text);
        if (!duration) {
            return tl::unexpected(duration.error());
        }
        if (key.minimum > 0 && duration->count() == 0) {
            return fail(ErrorKind::usage, fmt::format("\"{}\" must be more than 0", raw));
        }
        if (key.maximum != UINT_MAX && *duration > std::chrono::seconds(key.maximum)) {
            return fail(ErrorKind::usage,
                        fmt::format("\"{}\" is too long (at most {}h)", raw, key.maximum / 3600));
        }
        return std::string(text);
    }
    case ValueKind::gpu_list:
        return normalise_list(key, text);
    }
    return fail(ErrorKind::environment, "unknown value kind"); // unreachable
}

// ---- TOML files

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

std::string expected_form(const KeyInfo& key) {
    switch (key.kind) {
    case ValueKind::whole_number:
        if (key.maximum != UINT_MAX) {
            return fmt::format("a whole number from {} to {}", key.minimum, key.maximum);
        }
        return fmt::format("a whole number >= {}", key.minimum);
    case ValueKind::gpu_list:
        return "an array of GPUs or a comma-separated string";
    case ValueKind::text:
        return "a string";
    case ValueKind::absolute_path:
        return "a string holding an absolute path";
    case ValueKind::boolean:
        return "true or false";
    case ValueKind::size:
        return "a size string such as \"20G\" or an integer number of MiB";
    case ValueKind::duration:
        return "a duration string such as \"5m\" or an integer number of seconds";
    }
    return "a value";
}

// Adds "FILE:LINE:COLUMN: key: " to a message about one node, and the key's example as hint
// when the parser gave none.
Error at_node(const std::string& path, const toml::node& node, const KeyInfo& key, Error error) {
    error.kind = ErrorKind::usage;
    error.message =
        fmt::format("{}: {}: {}", position(path, node.source()), key.name, error.message);
    if (error.hint.empty()) {
        error.hint = fmt::format("e.g. {} = {}", key.name, key.toml_example);
    }
    return error;
}

Error wrong_type(const std::string& path, const toml::node& node, const KeyInfo& key) {
    return at_node(path,
                   node,
                   key,
                   Error{ErrorKind::usage,
                         fmt::format("expected {}, got {}", expected_form(key), type_name(node)),
                         {}});
}

Result<std::string>
convert_array(const std::string& path, const toml::array& array, const KeyInfo& key) {
    if (array.empty()) {
        return tl::unexpected(
            at_node(path,
                    array,
                    key,
                    Error{ErrorKind::usage, "the list is empty", "leave the key out instead"}));
    }
    std::vector<std::string> items;
    for (const auto& element : array) {
        Result<std::string> item;
        if (const auto* integer = element.as_integer()) {
            item = check_range(key, integer->get());
        } else if (const auto* string = element.as_string()) {
            item = normalise_list(key, string->get());
        } else {
            return tl::unexpected(
                at_node(path,
                        element,
                        key,
                        Error{ErrorKind::usage,
                              fmt::format("expected GPU indices or strings in the list, got {}",
                                          type_name(element)),
                              {}}));
        }
        if (!item) {
            return tl::unexpected(at_node(path, element, key, item.error()));
        }
        items.push_back(std::move(*item));
    }
    return join(items, ",");
}

Result<std::string>
convert_node(const std::string& path, const toml::node& node, const KeyInfo& key) {
    const auto* integer = node.as_integer();
    const auto* string = node.as_string();
    std::optional<Result<std::string>> text; // nullopt: the node has the wrong type
    switch (key.kind) {
    case ValueKind::whole_number:
        if (integer) {
            text = check_range(key, integer->get());
        }
        break;
    case ValueKind::boolean:
        if (const auto* boolean = node.as_boolean()) {
            text = std::string(boolean->get() ? "true" : "false");
        }
        break;
    case ValueKind::text:
    case ValueKind::absolute_path:
        if (string) {
            text = normalise_text(key, string->get());
        }
        break;
    case ValueKind::size:
    case ValueKind::duration:
        if (string) {
            text = normalise_text(key, string->get());
        } else if (integer) {
            text = check_range(key, integer->get());
        }
        break;
    case ValueKind::gpu_list:
        if (string) {
            text = normalise_text(key, string->get());
        } else if (const auto* array = node.as_array()) {
            return convert_array(path, *array, key);
        }
        break;
    }
    if (!text) {
        return tl::unexpected(wrong_type(path, node, key));
    }
    if (!*text) {
        return tl::unexpected(at_node(path, node, key, text->error()));
    }
    return std::move(**text);
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

struct Entry {
    const KeyInfo* key = nullptr;
    Value value;
    std::string location; // "FILE:LINE:COLUMN" for file entries, else empty
};

using Table = std::vector<Entry>;

struct ParsedFile {
    Table defaults;
    std::map<std::string, Table> profiles;
};

enum class FileRole { system, user };

// What the user sees for a key in messages about one source.
std::string_view label(const KeyInfo& key, Kind kind) {
    switch (kind) {
    case Kind::environment:
        return key.env_var;
    case Kind::command_line:
        return key.flag;
    default:
        return key.name;
    }
}

std::string location_prefix(const Entry& entry) {
    return entry.location.empty() ? std::string() : entry.location + ": ";
}

// count and min_gpus/max_gpus within one table (or the environment, or the command line).
Result<void> check_count_group(const Table& table) {
    const Entry* count = nullptr;
    const Entry* min = nullptr;
    const Entry* max = nullptr;
    for (const auto& entry : table) {
        const auto name = entry.key->name;
        if (name == "count") {
            count = &entry;
        } else if (name == "min_gpus") {
            min = &entry;
        } else if (name == "max_gpus") {
            max = &entry;
        }
    }
    if (count && (min || max)) {
        const Entry* other = min ? min : max;
        // Tables are in file order: report the second of the two.
        const Entry* later = std::max(count, other, std::less<>());
        const Kind kind = count->value.origin.kind;
        return fail(ErrorKind::usage,
                    fmt::format("{}{} cannot be combined with {}",
                                location_prefix(*later),
                                label(*count->key, kind),
                                label(*other->key, kind)),
                    fmt::format("use {} for exactly N GPUs, or {} and {} for a range",
                                label(*count->key, kind),
                                label(*find_key("min_gpus"), kind),
                                label(*find_key("max_gpus"), kind)));
    }
    if (min && max && std::stoul(max->value.text) < std::stoul(min->value.text)) {
        const Kind kind = max->value.origin.kind;
        return fail(ErrorKind::usage,
                    fmt::format("{}{} {} is below {} {}",
                                location_prefix(*max),
                                label(*max->key, kind),
                                max->value.text,
                                label(*min->key, kind),
                                min->value.text),
                    fmt::format("{} must be at least {} (it defaults to it)",
                                label(*max->key, kind),
                                label(*min->key, kind)));
    }
    return {};
}

Error placement_error(const KeyInfo& key,
                      const std::string& where,
                      const std::optional<std::string>& profile,
                      std::string_view system_path) {
    std::string message =
        profile ? fmt::format(
                      "{}: {} is not allowed in a profile (profiles.{})", where, key.name, *profile)
                : fmt::format(
                      "{}: {} is only allowed in the system configuration file", where, key.name);
    std::string hint;
    if (key.name == "lock_dir") {
        hint = fmt::format("set lock_dir in [defaults] of {} so that every user meets in one "
                           "lock directory; for a single run use WITH_GPU_LOCK_DIR or --lock-dir",
                           system_path);
    } else if (key.name == "banned") {
        hint = fmt::format("banned GPUs are set by the administrator in [defaults] of {}; to "
                           "avoid a GPU yourself use exclude",
                           system_path);
    }
    return Error{ErrorKind::usage, std::move(message), std::move(hint)};
}

Result<Table> parse_table(const ConfigFile& file,
                          FileRole role,
                          const toml::table& table,
                          const std::optional<std::string>& profile,
                          std::string_view system_path) {
    Table entries;
    for (const auto& [toml_key, node] : in_file_order(table)) {
        const std::string where = position(file.path, toml_key->source());
        const KeyInfo* key = find_key(toml_key->str());
        if (!key) {
            const auto suggestion = closest(toml_key->str(), key_names());
            return fail(ErrorKind::usage,
                        fmt::format("{}: unknown key \"{}\"", where, toml_key->str()),
                        suggestion ? fmt::format("did you mean {}?", *suggestion)
                                   : fmt::format("known keys: {}", fmt::join(key_names(), ", ")));
        }
        const bool allowed = profile                    ? key->allowed_in.profiles
                             : role == FileRole::system ? key->allowed_in.system_defaults
                                                        : key->allowed_in.user_defaults;
        if (!allowed) {
            return tl::unexpected(placement_error(*key, where, profile, system_path));
        }
        auto text = convert_node(file.path, *node, *key);
        if (!text) {
            return tl::unexpected(text.error());
        }
        Origin origin;
        if (profile) {
            origin = {Kind::profile, fmt::format("profile {} ({})", *profile, where)};
        } else {
            origin = {role == FileRole::system ? Kind::system_file : Kind::user_file, where};
        }
        entries.push_back(Entry{key, Value{std::move(*text), std::move(origin)}, where});
    }
    if (auto checked = check_count_group(entries); !checked) {
        return tl::unexpected(checked.error());
    }
    return entries;
}

Result<ParsedFile> parse_file(const ConfigFile& file, FileRole role, std::string_view system_path) {
    const toml::parse_result parsed = toml::parse(file.text, file.path);
    if (!parsed) {
        const auto& error = parsed.error();
        return fail(ErrorKind::usage,
                    fmt::format("{}: {}", position(file.path, error.source()), error.description()),
                    "a configuration file is TOML: a [defaults] table and [profiles.NAME] tables "
                    "of key = value lines");
    }
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
            auto entries = parse_table(file, role, *table, std::nullopt, system_path);
            if (!entries) {
                return tl::unexpected(entries.error());
            }
            result.defaults = std::move(*entries);
        } else if (name == "profiles") {
            const auto* profiles = node->as_table();
            if (!profiles) {
                return fail(ErrorKind::usage,
                            fmt::format("{}: profiles must be a table of [profiles.NAME] tables, "
                                        "not {}",
                                        where,
                                        type_name(*node)),
                            "write [profiles.NAME] on a line of its own, with key = value lines "
                            "below it");
            }
            for (const auto& [profile_key, profile_node] : in_file_order(*profiles)) {
                const std::string profile(profile_key->str());
                const auto* table = profile_node->as_table();
                if (!table) {
                    return fail(ErrorKind::usage,
                                fmt::format("{}: profiles.{} must be a table, not {}",
                                            position(file.path, profile_key->source()),
                                            profile,
                                            type_name(*profile_node)),
                                fmt::format("write [profiles.{}] on a line of its own, with key "
                                            "= value lines below it",
                                            profile));
                }
                auto entries = parse_table(file, role, *table, profile, system_path);
                if (!entries) {
                    return tl::unexpected(entries.error());
                }
                result.profiles[profile] = std::move(*entries);
            }
        } else if (find_key(name)) {
            return fail(ErrorKind::usage,
                        fmt::format("{}: {} must be in the [defaults] table or a [profiles.NAME] "
                                    "table",
                                    where,
                                    name),
                        "add a line [defaults] above it");
        } else {
            const auto suggestion = closest(name, {"defaults", "profiles"});
            return fail(ErrorKind::usage,
                        fmt::format("{}: unknown top-level key \"{}\"", where, name),
                        suggestion ? fmt::format("did you mean {}?", *suggestion)
                                   : std::string("a configuration file holds a [defaults] table "
                                                 "and [profiles.NAME] tables"));
        }
    }
    return result;
}

// ---- environment and command line

Result<Table> environment_table(const std::map<std::string, std::string>& environment) {
    Table entries;
    for (const auto& key : keys()) {
        if (key.env_var.empty() || !key.allowed_in.environment) {
            continue;
        }
        const auto it = environment.find(std::string(key.env_var));
        if (it == environment.end() || it->second.empty()) {
            continue;
        }
        auto text = normalise_text(key, it->second);
        if (!text) {
            auto error = text.error();
            error.message = fmt::format("{}={}: {}", key.env_var, it->second, error.message);
            if (error.hint.empty()) {
                error.hint = fmt::format("e.g. {}={}", key.env_var, key.example);
            }
            return tl::unexpected(error);
        }
        entries.push_back(Entry{
            &key, Value{std::move(*text), {Kind::environment, std::string(key.env_var)}}, {}});
    }
    if (auto checked = check_count_group(entries); !checked) {
        return tl::unexpected(checked.error());
    }
    return entries;
}

Result<Table> command_line_table(const std::map<std::string, std::string>& command_line) {
    for (const auto& [name, text] : command_line) {
        const KeyInfo* key = find_key(name);
        if (!key || key->flag.empty() || !key->allowed_in.command_line) {
            return fail(ErrorKind::environment,
                        fmt::format("internal error: configuration key \"{}\" cannot come from "
                                    "the command line",
                                    name));
        }
    }
    Table entries;
    for (const auto& key : keys()) {
        const auto it = command_line.find(std::string(key.name));
        if (it == command_line.end()) {
            continue;
        }
        auto text = normalise_text(key, it->second);
        if (!text) {
            auto error = text.error();
            error.message = fmt::format("{}: {}", key.flag, error.message);
            if (error.hint.empty()) {
                error.hint = key.kind == ValueKind::boolean
                                 ? fmt::format("e.g. {}", key.flag)
                                 : fmt::format("e.g. {} {}", key.flag, key.example);
            }
            return tl::unexpected(error);
        }
        entries.push_back(
            Entry{&key, Value{std::move(*text), {Kind::command_line, std::string(key.flag)}}, {}});
    }
    if (auto checked = check_count_group(entries); !checked) {
        return tl::unexpected(checked.error());
    }
    return entries;
}

Table builtin_table() {
    Table entries;
    for (const auto& key : keys()) {
        if (!key.builtin.empty()) {
            entries.push_back(Entry{
                &key,
                Value{std::string(key.builtin), {Kind::builtin, std::string(k_builtin_where)}},
                {}});
        }
    }
    return entries;
}

bool in_count_group(std::string_view name) {
    return name == "count" || name == "min_gpus" || name == "max_gpus";
}

using Merged = std::map<std::string, Entry, std::less<>>;

// A higher source replaces the keys it sets; the GPU count is replaced as a whole.
void apply_layer(Merged& merged, const Table& table) {
    const bool sets_count = std::any_of(table.begin(), table.end(), [](const Entry& entry) {
        return in_count_group(entry.key->name);
    });
    if (sets_count) {
        for (const auto name : {"count", "min_gpus", "max_gpus"}) {
            merged.erase(name);
        }
    }
    for (const auto& entry : table) {
        merged.insert_or_assign(std::string(entry.key->name), entry);
    }
}

struct ProfileChoice {
    std::string name;
    Origin origin;
};

std::optional<ProfileChoice> chosen_profile(const Sources& sources) {
    if (sources.profile) {
        if (sources.profile->empty()) {
            return std::nullopt;
        }
        return ProfileChoice{*sources.profile, {Kind::command_line, std::string(profile_flag)}};
    }
    const auto it = sources.environment.find(std::string(profile_env_var));
    if (it != sources.environment.end() && !it->second.empty()) {
        return ProfileChoice{it->second, {Kind::environment, std::string(profile_env_var)}};
    }
    return std::nullopt;
}

Result<void> check_strict(const Merged& merged) {
    const auto strict = merged.find("strict");
    if (strict == merged.end() || strict->second.value.text != "true" ||
        merged.count("gpu_type") != 0) {
        return {};
    }
    const Entry& entry = strict->second;
    const Kind kind = entry.value.origin.kind;
    return fail(ErrorKind::usage,
                fmt::format("{}{} needs {}",
                            location_prefix(entry),
                            label(*entry.key, kind),
                            label(*find_key("gpu_type"), kind)),
                "strict only chooses among GPUs of gpu_type: set gpu_type too (e.g. "
                "--gpu-type A100), or leave strict out");
}

void merge_banned(Merged& merged) {
    const auto banned = merged.find("banned");
    if (banned == merged.end()) {
        return;
    }
    const auto exclude = merged.find("exclude");
    if (exclude == merged.end()) {
        Entry entry = banned->second;
        entry.key = find_key("exclude");
        merged.emplace("exclude", std::move(entry));
        return;
    }
    std::vector<std::string> items = split_list(exclude->second.value.text);
    for (auto& item : split_list(banned->second.value.text)) {
        if (std::find(items.begin(), items.end(), item) == items.end()) {
            items.push_back(std::move(item));
        }
    }
    exclude->second.value.text = join(items, ",");
}

} // namespace

const std::vector<KeyInfo>& keys() {
    static const std::vector<KeyInfo> table = make_key_table();
    return table;
}

const KeyInfo* find_key(std::string_view name) {
    for (const auto& key : keys()) {
        if (key.name == name) {
            return &key;
        }
    }
    return nullptr;
}

std::vector<std::string> environment_variables() {
    std::vector<std::string> names;
    for (const auto& key : keys()) {
        if (!key.env_var.empty()) {
            names.emplace_back(key.env_var);
        }
    }
    names.emplace_back(profile_env_var);
    return names;
}

std::string_view kind_name(Origin::Kind kind) {
    switch (kind) {
    case Kind::builtin:
        return "built-in";
    case Kind::system_file:
        return "system file";
    case Kind::user_file:
        return "user file";
    case Kind::profile:
        return "profile";
    case Kind::environment:
        return "environment";
    case Kind::command_line:
        return "command line";
    }
    return "unknown";
}

const Value* Settings::find(std::string_view key) const {
    const auto it = values.find(key);
    return it == values.end() ? nullptr : &it->second;
}

std::optional<std::string> Settings::text(std::string_view key) const {
    const Value* value = find(key);
    return value ? std::optional<std::string>(value->text) : std::nullopt;
}

bool Settings::is_true(std::string_view key) const {
    const Value* value = find(key);
    return value && value->text == "true";
}

Result<Settings> resolve(const Sources& sources) {
    const std::string system_path =
        sources.system_file ? sources.system_file->path : system_config_path();

    ParsedFile system;
    ParsedFile user;
    if (sources.system_file) {
        auto parsed = parse_file(*sources.system_file, FileRole::system, system_path);
        if (!parsed) {
            return tl::unexpected(parsed.error());
        }
        system = std::move(*parsed);
    }
    if (sources.user_file) {
        auto parsed = parse_file(*sources.user_file, FileRole::user, system_path);
        if (!parsed) {
            return tl::unexpected(parsed.error());
        }
        user = std::move(*parsed);
    }
    auto environment = environment_table(sources.environment);
    if (!environment) {
        return tl::unexpected(environment.error());
    }
    auto command_line = command_line_table(sources.command_line);
    if (!command_line) {
        return tl::unexpected(command_line.error());
    }

    Settings settings;
    const Table empty;
    const Table* system_profile = &empty;
    const Table* user_profile = &empty;
    if (const auto choice = chosen_profile(sources)) {
        const auto in_system = system.profiles.find(choice->name);
        const auto in_user = user.profiles.find(choice->name);
        if (in_system == system.profiles.end() && in_user == user.profiles.end()) {
            std::vector<std::string> known;
            for (const auto* file : {&system, &user}) {
                for (const auto& [name, table] : file->profiles) {
                    known.push_back(name);
                }
            }
            std::sort(known.begin(), known.end());
            known.erase(std::unique(known.begin(), known.end()), known.end());
            const std::string user_path =
                sources.user_file ? sources.user_file->path : std::string(k_user_path_for_messages);
            return fail(
                ErrorKind::usage,
                fmt::format("unknown profile \"{}\" (from {}); {}",
                            choice->name,
                            choice->origin.where,
                            known.empty()
                                ? std::string("no profiles are defined")
                                : fmt::format("known profiles: {}", fmt::join(known, ", "))),
                fmt::format("define it as a [profiles.{}] table in {}", choice->name, user_path));
        }
        if (in_system != system.profiles.end()) {
            system_profile = &in_system->second;
        }
        if (in_user != user.profiles.end()) {
            user_profile = &in_user->second;
        }
        settings.profile = Value{choice->name, choice->origin};
    }

    // Lowest precedence first.
    Merged merged;
    apply_layer(merged, builtin_table());
    apply_layer(merged, system.defaults);
    apply_layer(merged, user.defaults);
    apply_layer(merged, *system_profile);
    apply_layer(merged, *user_profile);
    apply_layer(merged, *environment);
    apply_layer(merged, *command_line);

    if (auto checked = check_strict(merged); !checked) {
        return tl::unexpected(checked.error());
    }
    merge_banned(merged);
    for (auto& [name, entry] : merged) {
        settings.values.emplace(name, std::move(entry.value));
    }
    return settings;
}

std::string show(const Settings& settings) {
    struct Line {
        std::string left;
        std::string comment;
    };
    std::vector<Line> lines;
    std::size_t width = 0;
    const Value* banned = settings.find("banned");
    for (const auto& key : keys()) {
        const Value* value = settings.find(key.name);
        if (!value) {
            lines.push_back({fmt::format("{} = (unset)", key.name), {}});
            continue;
        }
        std::string comment = value->origin.where;
        if (key.name == "exclude" && banned) {
            comment =
                value->origin == banned->origin
                    ? fmt::format("banned ({})", banned->origin.where)
                    : fmt::format("{} + banned ({})", value->origin.where, banned->origin.where);
        }
        lines.push_back({fmt::format("{} = {}", key.name, value->text), std::move(comment)});
        width = std::max(width, lines.back().left.size());
    }
    std::string out;
    if (settings.profile) {
        out += fmt::format(
            "# profile {} (from {})\n", settings.profile->text, settings.profile->origin.where);
    }
    for (const auto& line : lines) {
        if (line.comment.empty()) {
            out += line.left + "\n";
        } else {
            out += fmt::format("{:<{}}  # {}\n", line.left, width, line.comment);
        }
    }
    return out;
}

std::string system_config_path() {
    return "/etc/with-gpu/config.toml";
}

std::optional<std::string> user_config_path(std::string_view xdg_config_home,
                                            std::string_view home) {
    // The XDG base directory specification says relative values are to be ignored.
    if (!xdg_config_home.empty() && xdg_config_home.front() == '/') {
        std::string base(xdg_config_home);
        if (base.back() != '/') {
            base += '/';
        }
        return base + "with-gpu/config.toml";
    }
    if (home.empty()) {
        return std::nullopt;
    }
    std::string base(home);
    if (base.back() != '/') {
        base += '/';
    }
    return base + ".config/with-gpu/config.toml";
}

std::vector<std::string> check_key_table_consistency() {
    std::vector<std::string> problems;
    std::vector<std::string_view> names;
    std::vector<std::string_view> env_vars;
    std::vector<std::string_view> flags;
    for (const auto& key : keys()) {
        if (key.name.empty()) {
            problems.emplace_back("a key has no name");
            continue;
        }
        names.push_back(key.name);
        std::string expected_env = "WITH_GPU_";
        std::string expected_flag = "--";
        for (const char c : key.name) {
            expected_env += to_upper(c);
            expected_flag += c == '_' ? '-' : c;
        }
        if (key.allowed_in.environment != !key.env_var.empty()) {
            problems.push_back(
                fmt::format("{}: env_var and allowed_in.environment disagree", key.name));
        }
        if (!key.env_var.empty()) {
            env_vars.push_back(key.env_var);
            if (key.env_var != expected_env) {
                problems.push_back(fmt::format("{}: environment variable {} should be {}",
                                               key.name,
                                               key.env_var,
                                               expected_env));
            }
        }
        if (key.allowed_in.command_line != !key.flag.empty()) {
            problems.push_back(
                fmt::format("{}: flag and allowed_in.command_line disagree", key.name));
        }
        if (!key.flag.empty()) {
            flags.push_back(key.flag);
            const std::string_view flag = key.flag;
            const bool ends_right =
                flag.size() >= expected_flag.size() &&
                flag.substr(flag.size() - expected_flag.size()) == expected_flag;
            if (!ends_right) {
                problems.push_back(
                    fmt::format("{}: flag {} should be {}", key.name, key.flag, expected_flag));
            }
        }
        if (!key.builtin.empty()) {
            const auto builtin = normalise_text(key, key.builtin);
            if (!builtin || *builtin != key.builtin) {
                problems.push_back(fmt::format(
                    "{}: built-in default \"{}\" is not normalised", key.name, key.builtin));
            }
        }
        if (const auto example = normalise_text(key, key.example); !example) {
            problems.push_back(fmt::format(
                "{}: example \"{}\": {}", key.name, key.example, example.error().message));
        }
        const std::string document = fmt::format("{} = {}", key.name, key.toml_example);
        const auto parsed = toml::parse(document);
        if (!parsed) {
            problems.push_back(fmt::format("{}: TOML example is not TOML: {}", key.name, document));
        } else if (const auto* node = parsed.table().get(key.name);
                   !node || !convert_node("example", *node, key)) {
            problems.push_back(fmt::format("{}: TOML example is rejected: {}", key.name, document));
        }
        if (key.help.empty()) {
            problems.push_back(fmt::format("{}: no help text", key.name));
        }
    }
    if (std::find(env_vars.begin(), env_vars.end(), profile_env_var) != env_vars.end()) {
        problems.push_back(fmt::format("{} is a key's variable", profile_env_var));
    }
    for (auto* list : {&names, &env_vars, &flags}) {
        std::sort(list->begin(), list->end());
        const auto duplicate = std::adjacent_find(list->begin(), list->end());
        if (duplicate != list->end()) {
            problems.push_back(fmt::format("{} appears twice", *duplicate));
        }
    }
    return problems;
}

} // namespace withgpu::config
