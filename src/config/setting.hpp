// One setting of with-gpu as data: one row of the table in settings.cpp says everything the
// program knows about it (kind, default, where it may be set, bounds, --help line, where its
// value goes). Its flag, environment variable and keyword are derived from its name.
#pragma once

#include "selection/gpu_ref.hpp"

#include <chrono>
#include <climits>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace withgpu::config {

// How a setting's value is written and checked.
enum class ValueKind {
    whole_number,  // TOML integer; text "10" (an optional unit letter such as "10%" in text)
    gpu_list,      // TOML array of strings/integers or a comma-separated string; text "0,2"
    text,          // TOML string, not empty
    absolute_path, // TOML string, a path that starts with '/' (not relative to the cwd)
    boolean,       // TOML true/false; text "1/0/true/false/yes/no/on/off"; normalised "true"
    size,          // TOML string "20G" or integer MiB; text as parse_size accepts
    duration,      // TOML string "5m" or integer seconds; text as parse_duration accepts
    hold_amount,   // TOML string: "off", a fraction of free memory "0.25", or a size "8G"
};

// Where a setting may be set. lock_dir and banned are the administrator's: everybody must
// meet in one lock directory, and banned GPUs are excluded whatever a user asks.
struct Places {
    bool system_defaults = true; // [defaults] of the system file
    bool user_defaults = true;   // [defaults] of the user file
    bool profiles = true;        // [profiles.NAME] of either file
    bool environment = true;     // WITH_GPU_<NAME>
    bool command_line = true;    // the flag --<name>, and the library's keyword argument
};

// A size, in bytes (a setting of kind `size`).
struct Bytes {
    std::uint64_t count = 0;
    friend bool operator==(const Bytes&, const Bytes&) = default;
};

// How much memory to hold on each claimed GPU (kind `hold_amount`): nothing, a fraction of
// its free memory in (0, 1], or a number of bytes.
struct HoldAmount {
    double fraction = 0; // used when bytes == 0; 0 and bytes 0: no hold
    std::uint64_t bytes = 0;
    [[nodiscard]] bool on() const { return fraction > 0 || bytes > 0; }
    friend bool operator==(const HoldAmount&, const HoldAmount&) = default;
};

// A value after checking, as its kind parses it: whole_number unsigned, boolean bool,
// text/absolute_path std::string, gpu_list GpuRefs, size Bytes, duration milliseconds.
using Parsed = std::variant<std::monostate,
                            unsigned,
                            bool,
                            std::string,
                            std::vector<selection::GpuRef>,
                            Bytes,
                            std::chrono::milliseconds,
                            HoldAmount>;

struct Launch; // launch.hpp: the typed settings of one launch, which `apply` fills

struct Setting {
    std::string_view name; // TOML key, e.g. "min_memory"; also gives --min-memory and
                           // WITH_GPU_MIN_MEMORY
    ValueKind kind = ValueKind::text;
    std::string_view builtin = {}; // built-in default in text form; empty: unset
    Places allowed_in = {};
    unsigned minimum = 0;        // whole_number: smallest value
    unsigned maximum = UINT_MAX; // whole_number: largest value
    char unit = '\0';            // whole_number: optional unit letter accepted in text ('%')
    std::chrono::milliseconds shortest{1};                                // duration: least
    std::chrono::milliseconds longest = std::chrono::milliseconds::max(); // duration: most
    bool names_allowed = false; // gpu_list: name:SUBSTRING items allowed
    char short_flag = '\0';     // a one-letter flag besides --<name>, e.g. 'n' for -n
    // The value of the flag given alone ("--hold"); a value is then given as --hold=VALUE,
    // never as the next word (which is the command's). Empty: the flag always takes a value.
    std::string_view flag_alone = {};
    std::string_view choices = {};    // text: the values allowed, "warn,kill"; empty: any
    std::string_view keyword = {};    // the library's keyword when it is not `name` ("gpus")
    std::string_view group = {};      // --help group
    std::string_view value_name = {}; // --help: what the flag takes, e.g. "SIZE"
    // The --help line. "{env}" stands for the environment variable, "{default}" for the
    // built-in default (help_text() fills them in).
    std::string_view help = {};
    std::string_view example = {};      // text form, e.g. "20G"
    std::string_view toml_example = {}; // TOML form, e.g. "\"20G\""
    // Puts a checked value where it takes effect (settings are applied in table order).
    void (*apply)(const Parsed& value, Launch& launch) = nullptr;
};

// The names derived from a setting's name.
[[nodiscard]] std::string env_var(const Setting& setting);      // "WITH_GPU_MIN_MEMORY"; "" if none
[[nodiscard]] std::string long_flag(const Setting& setting);    // "--min-memory"; "" if none
[[nodiscard]] std::string flag_label(const Setting& setting);   // "-n/--count", for messages
[[nodiscard]] std::string_view keyword(const Setting& setting); // "gpus", "min_memory"
[[nodiscard]] std::string help_text(const Setting& setting);    // the placeholders filled in

} // namespace withgpu::config
