// Configuration: built-in defaults, the system and user TOML files (a [defaults] table and
// [profiles.NAME] tables), WITH_GPU_* environment variables and the command line, merged by
// precedence with the origin of every value kept for messages and --show-config.
// Pure code: the caller reads the files and the environment and passes them in as values.
#pragma once

#include "util/error.hpp"

#include <climits>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace withgpu::config {

// How a key's value is written and checked.
enum class ValueKind {
    whole_number,  // TOML integer; text "10" (an optional unit letter such as "10%" in text)
    gpu_list,      // TOML array of strings/integers or a comma-separated string; text "0,2"
    text,          // TOML string, not empty
    absolute_path, // TOML string, a path that starts with '/' (not relative to the cwd)
    boolean,       // TOML true/false; text "1/0/true/false/yes/no/on/off"; normalised "true"
    size,          // TOML string "20G" or integer MiB; text as parse_size accepts
    duration,      // TOML string "5m" or integer seconds; text as parse_duration accepts
};

// Where a key may be set. lock_dir and banned are the administrator's: everybody must meet
// in one lock directory, and banned GPUs are excluded whatever a user asks.
struct Places {
    bool system_defaults = true; // [defaults] of the system file
    bool user_defaults = true;   // [defaults] of the user file
    bool profiles = true;        // [profiles.NAME] of either file
    bool environment = true;     // WITH_GPU_<KEY>
    bool command_line = true;    // the flag
};

struct KeyInfo {
    std::string_view name;    // TOML key, e.g. "min_memory"
    std::string_view env_var; // e.g. "WITH_GPU_MIN_MEMORY"; empty: none
    std::string_view flag;    // e.g. "--min-memory"; empty: none
    ValueKind kind = ValueKind::text;
    std::string_view builtin; // built-in default in text form; empty: unset
    Places allowed_in;
    unsigned minimum = 0;          // whole_number: smallest value; duration: 1 means "more than 0"
    unsigned maximum = UINT_MAX;   // whole_number: largest value; duration: in seconds
    char unit = '\0';              // whole_number: optional unit letter accepted in text ('%')
    bool names_allowed = false;    // gpu_list: name:SUBSTRING items allowed
    std::string_view example;      // text form, e.g. "20G"
    std::string_view toml_example; // TOML form, e.g. "\"20G\""
    std::string_view help;         // one line for documentation and --show-config
};

// The key table: the single source of truth for names, variables, flags, kinds and places,
// in the order --show-config and the documentation use.
[[nodiscard]] const std::vector<KeyInfo>& keys();
[[nodiscard]] const KeyInfo* find_key(std::string_view name);

// The profile is chosen with --profile NAME or WITH_GPU_PROFILE (the flag wins).
inline constexpr std::string_view profile_env_var = "WITH_GPU_PROFILE";
inline constexpr std::string_view profile_flag = "--profile";

// Every environment variable the configuration reads (keys' variables and WITH_GPU_PROFILE).
[[nodiscard]] std::vector<std::string> environment_variables();

struct Origin {
    enum class Kind { builtin, system_file, user_file, profile, environment, command_line };
    Kind kind = Kind::builtin;
    // "built-in default", "/etc/with-gpu/config.toml:12:1",
    // "profile llm (/home/a/.config/with-gpu/config.toml:8:1)", "WITH_GPU_MIN_MEMORY",
    // "--min-memory"
    std::string where;

    friend bool operator==(const Origin&, const Origin&) = default;
};

// "built-in", "system file", "user file", "profile", "environment", "command line".
[[nodiscard]] std::string_view kind_name(Origin::Kind kind);

struct Value {
    // Normalised to the text the command-line parsers accept: sizes "20G" or "2048" (MiB),
    // lists "0,2,name:T4", booleans "true"/"false", durations "5m" or "90" (seconds),
    // numbers "10" (unit letters dropped).
    std::string text;
    Origin origin;

    friend bool operator==(const Value&, const Value&) = default;
};

struct ConfigFile {
    std::string path; // as it should appear in messages
    std::string text; // the file's contents
};

struct Sources {
    std::optional<ConfigFile> system_file; // system_config_path(), when it exists
    std::optional<ConfigFile> user_file;   // user_config_path(...), when it exists
    // The process environment; only WITH_GPU_* names are read. Empty values count as unset.
    std::map<std::string, std::string> environment;
    // Keys given on the command line, key name -> text as typed ({"min_memory", "20G"});
    // booleans as "true". Only keys with a flag are accepted.
    std::map<std::string, std::string> command_line;
    // --profile NAME; an empty name means "no profile" (and overrides WITH_GPU_PROFILE).
    std::optional<std::string> profile;
};

struct Settings {
    // Only keys that have a value. "exclude" already includes the banned GPUs; "banned" is
    // also present on its own so that its origin can be shown.
    std::map<std::string, Value, std::less<>> values;
    // The selected profile's name, and where it was chosen (--profile or WITH_GPU_PROFILE).
    std::optional<Value> profile;

    [[nodiscard]] const Value* find(std::string_view key) const;
    [[nodiscard]] std::optional<std::string> text(std::string_view key) const;
    [[nodiscard]] bool is_true(std::string_view key) const; // boolean set to "true"
};

// Merges, lowest precedence first: built-in defaults, system [defaults], user [defaults],
// the selected profile (system file's table, then the user file's: user keys win), the
// environment, the command line. count/min_gpus/max_gpus are one setting: the highest source
// that sets any of them decides all three. Every value is checked with the command line's own
// parsers. Errors are ErrorKind::usage; messages start with "FILE:LINE:COLUMN: " for files,
// "WITH_GPU_X=value: " for the environment and "--flag: " for the command line.
[[nodiscard]] Result<Settings> resolve(const Sources& sources);

// For --show-config: one line per key in table order, "min_memory = 20G  # <origin>", or
// "gpu = (unset)"; a first comment line names the selected profile, if any.
[[nodiscard]] std::string show(const Settings& settings);

// "/etc/with-gpu/config.toml".
[[nodiscard]] std::string system_config_path();
// "$XDG_CONFIG_HOME/with-gpu/config.toml" when XDG_CONFIG_HOME is an absolute path, else
// "$HOME/.config/with-gpu/config.toml"; nullopt when neither is usable. Empty means unset.
[[nodiscard]] std::optional<std::string> user_config_path(std::string_view xdg_config_home,
                                                          std::string_view home);

// For tests: every key has a name, environment variables are WITH_GPU_<NAME upper-case>,
// flags are --<name with dashes> (count also -n), no duplicates. Returns the problems found.
[[nodiscard]] std::vector<std::string> check_key_table_consistency();

} // namespace withgpu::config
