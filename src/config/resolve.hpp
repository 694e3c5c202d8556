// Configuration: built-in defaults, the system and user TOML files (a [defaults] table and
// [profiles.NAME] tables), WITH_GPU_* environment variables and the command line (or a
// library caller's arguments), merged by precedence with the origin of every value kept for
// messages and --show-config. Pure code: the caller reads the files and the environment and
// passes them in as values.
#pragma once

#include "config/setting.hpp"
#include "util/error.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace withgpu::config {

struct Origin {
    enum class Kind {
        builtin,
        system_file,
        user_file,
        profile,
        environment,
        command_line,
        argument
    };
    Kind kind = Kind::builtin;
    // "built-in default", "/etc/with-gpu/config.toml:12:1",
    // "profile llm (/home/a/.config/with-gpu/config.toml:8:1)", "WITH_GPU_MIN_MEMORY",
    // "--min-memory", "min_memory=" (a library caller's keyword argument)
    std::string where;

    friend bool operator==(const Origin&, const Origin&) = default;
};

struct Value {
    std::string text; // normalised (value.hpp, Checked::text)
    Origin origin;
    Parsed parsed{}; // the typed value (value.hpp, Checked::parsed)

    friend bool operator==(const Value& a, const Value& b) {
        return a.text == b.text && a.origin == b.origin; // `parsed` follows from `text`
    }
};

struct ConfigFile {
    std::string path; // as it should appear in messages
    std::string text; // the file's contents
};

// The two configuration files' texts, as a front end read them.
struct Files {
    std::optional<ConfigFile> system; // paths.hpp's system_config_path(), if it exists
    std::optional<ConfigFile> user;   // user_config_path(...), if it exists
};

struct Sources {
    std::optional<ConfigFile> system_file; // system_config_path(), when it exists
    std::optional<ConfigFile> user_file;   // user_config_path(...), when it exists
    // The process environment; only WITH_GPU_* names are read. Empty values count as unset.
    std::map<std::string, std::string> environment;
    // Settings given on the command line, setting name -> text as typed ({"min_memory",
    // "20G"}); booleans as "true". Only settings with a flag are accepted.
    std::map<std::string, std::string> command_line;
    // Settings given by a library caller, keyword -> text ({"gpus", "0,2"}); the same
    // precedence as the command line. Unknown keywords are usage errors.
    std::map<std::string, std::string> arguments;
    // --profile NAME; an empty name means "no profile" (and overrides WITH_GPU_PROFILE).
    std::optional<std::string> profile;
};

struct Settings {
    // Only settings that have a value. "exclude" already includes the banned GPUs; "banned"
    // is also present on its own so that its origin can be shown.
    std::map<std::string, Value, std::less<>> values;
    // The selected profile's name, and where it was chosen (--profile or WITH_GPU_PROFILE).
    std::optional<Value> profile;

    [[nodiscard]] const Value* find(std::string_view name) const;
    [[nodiscard]] std::optional<std::string> text(std::string_view name) const;
    [[nodiscard]] bool is_true(std::string_view name) const; // boolean set to "true"
};

// Merges, lowest precedence first: built-in defaults, system [defaults], user [defaults],
// the selected profile (system file's table, then the user file's: user keys win), the
// environment, the command line and the caller's arguments. count/min_gpus/max_gpus are one
// setting: the highest source that sets any of them decides all three. Every value is checked
// once, by value.hpp. Errors are ErrorKind::usage; messages start with "FILE:LINE:COLUMN: "
// for files, "WITH_GPU_X=value: " for the environment, "--flag: " for the command line and
// "keyword=: " for arguments.
[[nodiscard]] Result<Settings> resolve(const Sources& sources);

} // namespace withgpu::config
