#include "config/resolve.hpp"

#include "config/layer.hpp"
#include "config/paths.hpp"
#include "config/settings.hpp"
#include "config/toml_file.hpp"
#include "config/value.hpp"
#include "util/strings.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace withgpu::config {

namespace {

using Kind = Origin::Kind;

constexpr std::string_view k_builtin_where = "built-in default";
constexpr std::string_view k_user_path_for_messages = "~/.config/with-gpu/config.toml";

// "e.g. min_memory=\"20G\"": an example as a caller writes it in Python (and close to C++).
std::string argument_example(const Setting& setting) {
    switch (setting.kind) {
    case ValueKind::whole_number:
        return std::string(setting.example);
    case ValueKind::boolean:
        return "True";
    default:
        return fmt::format("\"{}\"", setting.example);
    }
}

// A value given as text by the environment, the command line or a caller.
Result<Entry> text_entry(const Setting& setting, Kind kind, const std::string& raw) {
    auto checked = check_text(setting, raw);
    std::string where;
    switch (kind) {
    case Kind::environment:
        where = env_var(setting);
        break;
    case Kind::argument:
        where = fmt::format("{}=", keyword(setting));
        break;
    default:
        where = flag_label(setting);
        break;
    }
    if (!checked) {
        Error error = checked.error();
        if (kind == Kind::environment) {
            error.message = fmt::format("{}={}: {}", where, raw, error.message);
            if (error.hint.empty()) {
                error.hint = fmt::format("e.g. {}={}", where, setting.example);
            }
        } else if (kind == Kind::argument) {
            error.message = fmt::format("{}: {}", keyword(setting), error.message);
            if (error.hint.empty()) {
                error.hint = fmt::format("e.g. {}={}", keyword(setting), argument_example(setting));
            }
        } else {
            error.message = fmt::format("{}: {}", where, error.message);
            if (error.hint.empty()) {
                error.hint = setting.kind == ValueKind::boolean ? fmt::format("e.g. {}", where)
                             : !setting.flag_alone.empty() && kind == Kind::command_line
                                 ? fmt::format("e.g. {}={}", where, setting.example)
                                 : fmt::format("e.g. {} {}", where, setting.example);
            }
        }
        return tl::unexpected(std::move(error));
    }
    return Entry{
        &setting,
        Value{std::move(checked->text), {kind, std::move(where)}, std::move(checked->parsed)},
        {}};
}

// The entries of one text source in table order: `lookup` gives a setting's text, or nullptr
// when the source does not set it.
template <typename Lookup> Result<Layer> text_layer(Kind kind, Lookup lookup) {
    Layer layer;
    for (const auto& setting : settings()) {
        const std::string* raw = lookup(setting);
        if (raw == nullptr) {
            continue;
        }
        auto entry = text_entry(setting, kind, *raw);
        if (!entry) {
            return tl::unexpected(entry.error());
        }
        layer.push_back(std::move(*entry));
    }
    if (auto checked = check_count_group(layer); !checked) {
        return tl::unexpected(checked.error());
    }
    return layer;
}

const std::string* find_in(const std::map<std::string, std::string>& map, const std::string& key) {
    const auto it = key.empty() ? map.end() : map.find(key);
    return it == map.end() ? nullptr : &it->second;
}

Result<Layer> environment_layer(const std::map<std::string, std::string>& environment) {
    return text_layer(Kind::environment, [&](const Setting& setting) -> const std::string* {
        const std::string* value = find_in(environment, env_var(setting));
        return value != nullptr && !value->empty() ? value : nullptr; // empty counts as unset
    });
}

Result<Layer> command_line_layer(const std::map<std::string, std::string>& command_line) {
    for (const auto& [name, text] : command_line) {
        const Setting* setting = find_setting(name);
        if (!setting || !setting->allowed_in.command_line) {
            return fail(ErrorKind::failed,
                        fmt::format("internal error: configuration key \"{}\" cannot come from "
                                    "the command line",
                                    name));
        }
    }
    return text_layer(Kind::command_line, [&](const Setting& setting) {
        return find_in(command_line, std::string(setting.name));
    });
}

Result<Layer> argument_layer(const std::map<std::string, std::string>& arguments) {
    std::vector<std::string_view> keywords;
    for (const auto& setting : settings()) {
        if (setting.allowed_in.command_line) {
            keywords.push_back(keyword(setting));
        }
    }
    for (const auto& [word, text] : arguments) {
        if (!find_keyword(word)) {
            const auto suggestion = text::closest(word, keywords);
            return fail(ErrorKind::usage,
                        fmt::format("unknown setting \"{}\"", word),
                        suggestion ? fmt::format("did you mean {}?", *suggestion)
                                   : fmt::format("known settings: {}", fmt::join(keywords, ", ")));
        }
    }
    return text_layer(Kind::argument, [&](const Setting& setting) -> const std::string* {
        return setting.allowed_in.command_line ? find_in(arguments, std::string(keyword(setting)))
                                               : nullptr;
    });
}

Layer builtin_layer() {
    Layer layer;
    for (const auto& setting : settings()) {
        if (!setting.builtin.empty()) {
            auto checked = check_text(setting, setting.builtin); // the table test keeps it valid
            layer.push_back(Entry{&setting,
                                  Value{std::string(setting.builtin),
                                        {Kind::builtin, std::string(k_builtin_where)},
                                        checked ? std::move(checked->parsed) : Parsed{}},
                                  {}});
        }
    }
    return layer;
}

bool in_count_group(std::string_view name) {
    return name == "count" || name == "min_gpus" || name == "max_gpus";
}

using Merged = std::map<std::string, Entry, std::less<>>;

// A higher source replaces the settings it sets; the GPU count is replaced as a whole.
void apply_layer(Merged& merged, const Layer& layer) {
    const bool sets_count = std::any_of(layer.begin(), layer.end(), [](const Entry& entry) {
        return in_count_group(entry.setting->name);
    });
    if (sets_count) {
        for (const auto* name : {"count", "min_gpus", "max_gpus"}) {
            merged.erase(name);
        }
    }
    for (const auto& entry : layer) {
        merged.insert_or_assign(std::string(entry.setting->name), entry);
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
                            label(*entry.setting, kind),
                            label(*find_setting("gpu_type"), kind)),
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
        entry.setting = find_setting("exclude");
        merged.emplace("exclude", std::move(entry));
        return;
    }
    std::vector<std::string> items = text::split_list(exclude->second.value.text);
    auto& refs = std::get<std::vector<selection::GpuRef>>(exclude->second.value.parsed);
    for (const auto& ref : std::get<std::vector<selection::GpuRef>>(banned->second.value.parsed)) {
        if (std::find(items.begin(), items.end(), ref.text) == items.end()) {
            items.push_back(ref.text);
            refs.push_back(ref);
        }
    }
    exclude->second.value.text = text::join(items, ",");
}

struct Files {
    ParsedFile system;
    ParsedFile user;
};

Result<Files> parse_files(const Sources& sources) {
    const std::string system_path =
        sources.system_file ? sources.system_file->path : system_config_path();
    Files files;
    if (sources.system_file) {
        auto parsed = parse_file(*sources.system_file, FileRole::system, system_path);
        if (!parsed) {
            return tl::unexpected(parsed.error());
        }
        files.system = std::move(*parsed);
    }
    if (sources.user_file) {
        auto parsed = parse_file(*sources.user_file, FileRole::user, system_path);
        if (!parsed) {
            return tl::unexpected(parsed.error());
        }
        files.user = std::move(*parsed);
    }
    return files;
}

Error unknown_profile(const Sources& sources, const Files& files, const ProfileChoice& choice) {
    std::vector<std::string> known;
    for (const auto* file : {&files.system, &files.user}) {
        for (const auto& [name, layer] : file->profiles) {
            known.push_back(name);
        }
    }
    std::sort(known.begin(), known.end());
    known.erase(std::unique(known.begin(), known.end()), known.end());
    const std::string user_path =
        sources.user_file ? sources.user_file->path : std::string(k_user_path_for_messages);
    return Error{ErrorKind::usage,
                 fmt::format("unknown profile \"{}\" (from {}); {}",
                             choice.name,
                             choice.origin.where,
                             known.empty()
                                 ? std::string("no profiles are defined")
                                 : fmt::format("known profiles: {}", fmt::join(known, ", "))),
                 fmt::format("define it as a [profiles.{}] table in {}", choice.name, user_path)};
}

// The system file's and the user file's tables of the chosen profile (empty when none).
struct ProfileLayers {
    const Layer* system = nullptr;
    const Layer* user = nullptr;
};

Result<ProfileLayers>
profile_layers(const Sources& sources, const Files& files, Settings& settings) {
    static const Layer empty;
    ProfileLayers layers{&empty, &empty};
    const auto choice = chosen_profile(sources);
    if (!choice) {
        return layers;
    }
    const auto in_system = files.system.profiles.find(choice->name);
    const auto in_user = files.user.profiles.find(choice->name);
    if (in_system == files.system.profiles.end() && in_user == files.user.profiles.end()) {
        return tl::unexpected(unknown_profile(sources, files, *choice));
    }
    if (in_system != files.system.profiles.end()) {
        layers.system = &in_system->second;
    }
    if (in_user != files.user.profiles.end()) {
        layers.user = &in_user->second;
    }
    settings.profile = Value{choice->name, choice->origin, {}};
    return layers;
}

} // namespace

const Value* Settings::find(std::string_view name) const {
    const auto it = values.find(name);
    return it == values.end() ? nullptr : &it->second;
}

std::optional<std::string> Settings::text(std::string_view name) const {
    const Value* value = find(name);
    return value ? std::optional<std::string>(value->text) : std::nullopt;
}

bool Settings::is_true(std::string_view name) const {
    const Value* value = find(name);
    return value && value->text == "true";
}

Result<Settings> resolve(const Sources& sources) {
    auto files = parse_files(sources);
    if (!files) {
        return tl::unexpected(files.error());
    }
    auto environment = environment_layer(sources.environment);
    if (!environment) {
        return tl::unexpected(environment.error());
    }
    auto command_line = command_line_layer(sources.command_line);
    if (!command_line) {
        return tl::unexpected(command_line.error());
    }
    auto arguments = argument_layer(sources.arguments);
    if (!arguments) {
        return tl::unexpected(arguments.error());
    }
    Settings settings;
    auto profile = profile_layers(sources, *files, settings);
    if (!profile) {
        return tl::unexpected(profile.error());
    }

    // Lowest precedence first.
    const Layer builtins = builtin_layer();
    Merged merged;
    for (const Layer* layer : std::initializer_list<const Layer*>{&builtins,
                                                                  &files->system.defaults,
                                                                  &files->user.defaults,
                                                                  profile->system,
                                                                  profile->user,
                                                                  &*environment,
                                                                  &*command_line,
                                                                  &*arguments}) {
        apply_layer(merged, *layer);
    }
    if (auto checked = check_strict(merged); !checked) {
        return tl::unexpected(checked.error());
    }
    merge_banned(merged);
    for (auto& [name, entry] : merged) {
        settings.values.emplace(name, std::move(entry.value));
    }
    return settings;
}

} // namespace withgpu::config
