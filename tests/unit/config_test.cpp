#include "config/launch.hpp"
#include "config/paths.hpp"
#include "config/resolve.hpp"
#include "config/settings.hpp"
#include "config/show.hpp"
#include "config/toml_file.hpp"
#include "config/value.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace withgpu::config {
namespace {

using Kind = Origin::Kind;

// The hints for an unknown key or keyword: every setting (files), every keyword a caller may
// give (the library), in table order.
std::string known_keys() {
    std::vector<std::string> names;
    for (const auto& setting : settings()) {
        names.emplace_back(setting.name);
    }
    return "known keys: " + fmt::format("{}", fmt::join(names, ", "));
}
std::string known_settings() {
    std::vector<std::string> names;
    for (const auto& setting : settings()) {
        if (setting.allowed_in.command_line) {
            names.emplace_back(keyword(setting));
        }
    }
    return "known settings: " + fmt::format("{}", fmt::join(names, ", "));
}

// --show-config's lines, with runs of spaces made one (the column values are aligned on
// depends on every line); checked for alignment separately.
std::vector<std::string> show_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(std::regex_replace(line, std::regex(" {2,}"), " "));
    }
    return lines;
}

const std::string k_system = "/etc/with-gpu/config.toml";
const std::string k_user = "/home/a/.config/with-gpu/config.toml";

ConfigFile system_file(std::string text) {
    return {k_system, std::move(text)};
}

ConfigFile user_file(std::string text) {
    return {k_user, std::move(text)};
}

Settings resolved(const Sources& sources) {
    auto result = resolve(sources);
    EXPECT_TRUE(result.has_value()) << (result ? "" : result.error().message);
    return result ? *result : Settings{};
}

Error error_of(const Sources& sources) {
    auto result = resolve(sources);
    EXPECT_FALSE(result.has_value()) << (result ? show(*result) : "");
    return result ? Error{} : result.error();
}

Sources with_user(std::string text) {
    Sources sources;
    sources.user_file = user_file(std::move(text));
    return sources;
}

Sources with_system(std::string text) {
    Sources sources;
    sources.system_file = system_file(std::move(text));
    return sources;
}

// ---- the setting table

// What a row must satisfy; the table is data, so these checks are what keeps it honest.
TEST(ConfigSettingsTest, EveryRowIsComplete) {
    std::vector<std::string> names;
    std::vector<std::string> keywords;
    std::vector<char> short_flags;
    for (const auto& setting : settings()) {
        SCOPED_TRACE(std::string(setting.name));
        ASSERT_FALSE(setting.name.empty());
        names.emplace_back(setting.name);
        EXPECT_NE(setting.apply, nullptr) << "a value that goes nowhere";
        EXPECT_FALSE(setting.help.empty());
        EXPECT_EQ(help_text(setting).find('{'), std::string::npos) << help_text(setting);
        if (setting.allowed_in.command_line) {
            keywords.emplace_back(keyword(setting));
            EXPECT_FALSE(setting.group.empty()) << "a flag outside every --help group";
            EXPECT_EQ(setting.value_name.empty(), setting.kind == ValueKind::boolean);
        }
        if (setting.short_flag != '\0') {
            short_flags.push_back(setting.short_flag);
        }
        if (!setting.builtin.empty()) {
            const auto builtin = check_text(setting, setting.builtin);
            ASSERT_TRUE(builtin.has_value()) << builtin.error().message;
            EXPECT_EQ(builtin->text, setting.builtin) << "built-in default is not normalised";
        }
        const auto example = check_text(setting, setting.example);
        EXPECT_TRUE(example.has_value()) << setting.example;
        EXPECT_TRUE(toml_example_is_accepted(setting)) << setting.toml_example;
    }
    for (auto* list : {&names, &keywords}) {
        std::sort(list->begin(), list->end());
        EXPECT_EQ(std::adjacent_find(list->begin(), list->end()), list->end());
    }
    std::sort(short_flags.begin(), short_flags.end());
    EXPECT_EQ(std::adjacent_find(short_flags.begin(), short_flags.end()), short_flags.end());
}

TEST(ConfigSettingsTest, NamesAreDerivedFromTheSettingName) {
    const Setting& min_memory = *find_setting("min_memory");
    EXPECT_EQ(env_var(min_memory), "WITH_GPU_MIN_MEMORY");
    EXPECT_EQ(long_flag(min_memory), "--min-memory");
    EXPECT_EQ(flag_label(min_memory), "--min-memory");
    EXPECT_EQ(keyword(min_memory), "min_memory");
    EXPECT_EQ(flag_label(*find_setting("count")), "-n/--count");
    EXPECT_EQ(keyword(*find_setting("gpu")), "gpus");
    EXPECT_EQ(find_keyword("gpus"), find_setting("gpu"));
    EXPECT_EQ(find_keyword("gpu"), nullptr);
    // banned is the administrator's: no variable, no flag, no keyword.
    const Setting& banned = *find_setting("banned");
    EXPECT_EQ(env_var(banned), "");
    EXPECT_EQ(long_flag(banned), "");
    EXPECT_EQ(find_keyword("banned"), nullptr);
    EXPECT_EQ(find_setting("nope"), nullptr);
    EXPECT_EQ(help_text(*find_setting("lock_dir")),
              "Shared claim directory (env WITH_GPU_LOCK_DIR; default /tmp/with-gpu)");
}

// The order itself is docs/config.md's (ConfigDocsTest checks it): a new setting is added in
// one place, the table, and this test does not list them again.
TEST(ConfigSettingsTest, NamesAreUniqueSnakeCaseAndTheChosenOnesComeFirst) {
    std::set<std::string_view> seen;
    for (const auto& setting : settings()) {
        EXPECT_TRUE(seen.insert(setting.name).second) << setting.name;
        EXPECT_EQ(setting.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_"),
                  std::string_view::npos)
            << setting.name;
    }
    EXPECT_EQ(settings().front().name, "count"); // -n comes first in --help and the docs
}

TEST(ConfigValueTest, HoldAmountsAreFractionsSizesOrOff) {
    const Setting& hold = *find_setting("hold");
    EXPECT_EQ(std::get<HoldAmount>(check_text(hold, "0.5")->parsed), (HoldAmount{0.5, 0}));
    EXPECT_EQ(std::get<HoldAmount>(check_text(hold, "1")->parsed), (HoldAmount{1.0, 0}));
    EXPECT_EQ(std::get<HoldAmount>(check_text(hold, "8G")->parsed), (HoldAmount{0, 8ULL << 30U}));
    EXPECT_FALSE(std::get<HoldAmount>(check_text(hold, "off")->parsed).on());
    EXPECT_EQ(check_text(hold, "off")->text, "off");
    for (const char* bad : {"2", "1.5", "0.0", "-0.5", "lots", "0.5x", ""}) {
        const auto checked = check_text(hold, bad);
        ASSERT_FALSE(checked.has_value()) << bad;
        EXPECT_EQ(checked.error().kind, ErrorKind::usage) << bad;
    }
    EXPECT_EQ(find_setting("hold")->flag_alone, "0.25");
}

TEST(ConfigValueTest, ChoicesAreCheckedAndNormalised) {
    const Setting& on_misplaced = *find_setting("on_misplaced");
    EXPECT_EQ(check_text(on_misplaced, " KILL ")->text, "kill");
    const auto bad = check_text(on_misplaced, "nuke");
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().message, "\"nuke\" is not one of warn, kill");
}

// ---- precedence

TEST(ConfigPrecedenceTest, BuiltInDefaultsAlone) {
    const auto settings = resolved({});
    const Origin builtin{Kind::builtin, "built-in default"};
    std::map<std::string, Value, std::less<>> expected{
        {"count", {"1", builtin}},
        {"min_memory", {"2048", builtin}},
        {"poll", {"2s", builtin}},
        {"hold_timeout", {"5m", builtin}},
        {"on_misplaced", {"warn", builtin}},
        {"lock_dir", {"/tmp/with-gpu", builtin}},
    };
    EXPECT_EQ(settings.values, expected);
    EXPECT_FALSE(settings.profile.has_value());
}

// Each step adds one source above the previous ones; the newest must win, with its origin.
TEST(ConfigPrecedenceTest, EverySourceOverridesTheOnesBelowIt) {
    struct Step {
        std::string name;
        std::function<void(Sources&)> add;
        Value expected;
    };
    const std::vector<Step> steps{
        {"built-in", [](Sources&) {}, {"2048", {Kind::builtin, "built-in default"}}},
        {"system file",
         [](Sources& s) { s.system_file = system_file("[defaults]\nmin_memory = \"1G\"\n"); },
         {"1G", {Kind::system_file, k_system + ":2:1"}}},
        {"user file",
         [](Sources& s) { s.user_file = user_file("[defaults]\nmin_memory = \"2G\"\n"); },
         {"2G", {Kind::user_file, k_user + ":2:1"}}},
        {"profile",
         [](Sources& s) {
             s.user_file->text += "[profiles.llm]\nmin_memory = \"3G\"\n";
             s.profile = "llm";
         },
         {"3G", {Kind::profile, "profile llm (" + k_user + ":4:1)"}}},
        {"environment",
         [](Sources& s) { s.environment["WITH_GPU_MIN_MEMORY"] = "4G"; },
         {"4G", {Kind::environment, "WITH_GPU_MIN_MEMORY"}}},
        {"command line",
         [](Sources& s) { s.command_line["min_memory"] = "5G"; },
         {"5G", {Kind::command_line, "--min-memory"}}},
    };
    Sources sources;
    for (const auto& step : steps) {
        step.add(sources);
        const auto settings = resolved(sources);
        ASSERT_NE(settings.find("min_memory"), nullptr) << step.name;
        EXPECT_EQ(*settings.find("min_memory"), step.expected) << step.name;
    }
}

// The same ladder, but each source sets a different key: lower sources keep the keys that
// higher ones leave alone.
TEST(ConfigPrecedenceTest, KeysNotSetAboveKeepTheirLowerOrigin) {
    Sources sources;
    sources.system_file = system_file("[defaults]\nmax_util = 50\nmax_temp = 85\n");
    sources.user_file = user_file("[defaults]\nmax_temp = 80\n"
                                  "[profiles.llm]\nmin_memory = \"40G\"\n");
    sources.profile = "llm";
    sources.environment = {{"WITH_GPU_WAIT", "1"}, {"HOME", "/home/a"}};
    sources.command_line = {{"count", "2"}};
    const auto settings = resolved(sources);
    auto origin_of = [&](std::string_view key) {
        const Value* value = settings.find(key);
        return value ? value->origin : Origin{Kind::builtin, "(unset)"};
    };
    EXPECT_EQ(settings.text("max_util"), "50");
    EXPECT_EQ(origin_of("max_util"), (Origin{Kind::system_file, k_system + ":2:1"}));
    EXPECT_EQ(settings.text("max_temp"), "80");
    EXPECT_EQ(origin_of("max_temp"), (Origin{Kind::user_file, k_user + ":2:1"}));
    EXPECT_EQ(settings.text("min_memory"), "40G");
    EXPECT_EQ(origin_of("min_memory").kind, Kind::profile);
    EXPECT_EQ(settings.text("wait"), "true");
    EXPECT_TRUE(settings.is_true("wait"));
    EXPECT_EQ(origin_of("wait"), (Origin{Kind::environment, "WITH_GPU_WAIT"}));
    EXPECT_EQ(settings.text("count"), "2");
    EXPECT_EQ(origin_of("count"), (Origin{Kind::command_line, "-n/--count"}));
    EXPECT_EQ(settings.text("poll"), "2s");
    EXPECT_EQ(origin_of("poll").kind, Kind::builtin);
    EXPECT_EQ(settings.find("gpu"), nullptr);
    EXPECT_EQ(settings.text("gpu"), std::nullopt);
}

// ---- profiles

TEST(ConfigProfileTest, ProfileFromTheSystemFile) {
    Sources sources = with_system("[profiles.small]\nmax_gpus = 1\nmin_memory = 4096\n");
    sources.profile = "small";
    const auto settings = resolved(sources);
    EXPECT_EQ(settings.text("min_memory"), "4096");
    EXPECT_EQ(settings.find("min_memory")->origin,
              (Origin{Kind::profile, "profile small (" + k_system + ":3:1)"}));
    ASSERT_TRUE(settings.profile.has_value());
    EXPECT_EQ(*settings.profile, (Value{"small", {Kind::command_line, "--profile"}}));
}

TEST(ConfigProfileTest, SystemAndUserProfileTablesMergeWithUserKeysWinning) {
    Sources sources;
    sources.system_file = system_file("[profiles.llm]\nmin_memory = \"40G\"\nmax_util = 10\n");
    sources.user_file = user_file("[defaults]\nmax_util = 90\n[profiles.llm]\nmin_memory = "
                                  "\"60G\"\n");
    sources.profile = "llm";
    const auto settings = resolved(sources);
    EXPECT_EQ(*settings.find("min_memory"),
              (Value{"60G", {Kind::profile, "profile llm (" + k_user + ":4:1)"}}));
    // The system profile still beats the user's [defaults].
    EXPECT_EQ(*settings.find("max_util"),
              (Value{"10", {Kind::profile, "profile llm (" + k_system + ":3:1)"}}));
}

TEST(ConfigProfileTest, ChosenByEnvironmentVariable) {
    Sources sources = with_user("[profiles.small]\nmin_memory = \"8G\"\n");
    sources.environment["WITH_GPU_PROFILE"] = "small";
    const auto settings = resolved(sources);
    EXPECT_EQ(settings.text("min_memory"), "8G");
    EXPECT_EQ(*settings.profile, (Value{"small", {Kind::environment, "WITH_GPU_PROFILE"}}));
}

TEST(ConfigProfileTest, FlagBeatsEnvironmentAndEmptyFlagMeansNone) {
    Sources sources = with_user("[profiles.small]\nmin_memory = \"8G\"\n"
                                "[profiles.llm]\nmin_memory = \"40G\"\n");
    sources.environment["WITH_GPU_PROFILE"] = "small";
    sources.profile = "llm";
    EXPECT_EQ(resolved(sources).text("min_memory"), "40G");
    sources.profile = "";
    const auto settings = resolved(sources);
    EXPECT_EQ(settings.text("min_memory"), "2048");
    EXPECT_FALSE(settings.profile.has_value());
}

TEST(ConfigProfileTest, ProfilesAreIgnoredUnlessChosen) {
    const auto settings = resolved(with_user("[profiles.llm]\nmin_memory = \"40G\"\n"));
    EXPECT_EQ(settings.text("min_memory"), "2048");
}

TEST(ConfigProfileTest, UnknownProfileListsTheKnownOnes) {
    Sources sources;
    sources.system_file = system_file("[profiles.small]\n[profiles.llm]\n");
    sources.user_file = user_file("[profiles.llm]\n[profiles.debug]\n");
    sources.profile = "big";
    const auto error = error_of(sources);
    EXPECT_EQ(error.kind, ErrorKind::usage);
    EXPECT_EQ(error.message,
              "unknown profile \"big\" (from --profile); known profiles: debug, llm, small");
    EXPECT_EQ(error.hint, "define it as a [profiles.big] table in " + k_user);
}

TEST(ConfigProfileTest, UnknownProfileWithoutAnyProfiles) {
    Sources sources;
    sources.environment["WITH_GPU_PROFILE"] = "big";
    const auto error = error_of(sources);
    EXPECT_EQ(error.message,
              "unknown profile \"big\" (from WITH_GPU_PROFILE); no profiles are "
              "defined");
    EXPECT_EQ(error.hint, "define it as a [profiles.big] table in ~/.config/with-gpu/config.toml");
}

// ---- the GPU count is one setting

TEST(ConfigCountTest, HighestSourceDecidesCountMinAndMax) {
    struct Case {
        std::string name;
        std::string system;
        std::string user;
        std::map<std::string, std::string> environment;
        std::map<std::string, std::string> command_line;
        std::optional<std::string> count, min_gpus, max_gpus;
    };
    const std::vector<Case> cases{
        {"built-in", "", "", {}, {}, "1", std::nullopt, std::nullopt},
        {"range replaces built-in count",
         "",
         "",
         {{"WITH_GPU_MAX_GPUS", "4"}},
         {},
         std::nullopt,
         std::nullopt,
         "4"},
        {"user count replaces system range",
         "[defaults]\nmin_gpus = 2\nmax_gpus = 4\n",
         "[defaults]\ncount = 3\n",
         {},
         {},
         "3",
         std::nullopt,
         std::nullopt},
        {"command-line min replaces user count",
         "",
         "[defaults]\ncount = 3\n",
         {},
         {{"min_gpus", "2"}},
         std::nullopt,
         "2",
         std::nullopt},
        {"lower range is not mixed in",
         "[defaults]\nmin_gpus = 2\nmax_gpus = 8\n",
         "",
         {{"WITH_GPU_MIN_GPUS", "4"}},
         {},
         std::nullopt,
         "4",
         std::nullopt},
    };
    for (const auto& c : cases) {
        Sources sources;
        if (!c.system.empty()) {
            sources.system_file = system_file(c.system);
        }
        if (!c.user.empty()) {
            sources.user_file = user_file(c.user);
        }
        sources.environment = c.environment;
        sources.command_line = c.command_line;
        const auto settings = resolved(sources);
        EXPECT_EQ(settings.text("count"), c.count) << c.name;
        EXPECT_EQ(settings.text("min_gpus"), c.min_gpus) << c.name;
        EXPECT_EQ(settings.text("max_gpus"), c.max_gpus) << c.name;
    }
}

// ---- lock_dir and banned belong to the administrator

TEST(ConfigAdminKeysTest, LockDirFromSystemFileEnvironmentAndCommandLine) {
    Sources sources = with_system("[defaults]\nlock_dir = \"/var/lib/with-gpu\"\n");
    EXPECT_EQ(*resolved(sources).find("lock_dir"),
              (Value{"/var/lib/with-gpu", {Kind::system_file, k_system + ":2:1"}}));
    sources.environment["WITH_GPU_LOCK_DIR"] = "/srv/locks";
    EXPECT_EQ(*resolved(sources).find("lock_dir"),
              (Value{"/srv/locks", {Kind::environment, "WITH_GPU_LOCK_DIR"}}));
    sources.command_line["lock_dir"] = "/run/with gpu";
    EXPECT_EQ(*resolved(sources).find("lock_dir"),
              (Value{"/run/with gpu", {Kind::command_line, "--lock-dir"}}));
}

TEST(ConfigAdminKeysTest, BannedIsAddedToExclude) {
    Sources sources = with_system("[defaults]\nbanned = [\"name:T4\", 3]\n");
    auto settings = resolved(sources);
    EXPECT_EQ(*settings.find("banned"),
              (Value{"name:T4,3", {Kind::system_file, k_system + ":2:1"}}));
    EXPECT_EQ(*settings.find("exclude"),
              (Value{"name:T4,3", {Kind::system_file, k_system + ":2:1"}}));

    // A user's exclude, whatever its source, cannot drop banned GPUs; duplicates collapse.
    sources.user_file = user_file("[defaults]\nexclude = [0, 3]\n");
    sources.command_line["exclude"] = "1, 3";
    settings = resolved(sources);
    EXPECT_EQ(*settings.find("exclude"), (Value{"1,3,name:T4", {Kind::command_line, "--exclude"}}));

    // There is no variable for it.
    sources.environment["WITH_GPU_BANNED"] = "0";
    EXPECT_EQ(resolved(sources).text("banned"), "name:T4,3");
}

struct ErrorCase {
    std::string name;
    std::string system; // file texts; empty: no file
    std::string user;
    std::map<std::string, std::string> environment;
    std::map<std::string, std::string> command_line;
    std::string message;
    std::string hint;
    std::map<std::string, std::string> arguments{}; // a library caller's
};

void expect_errors(const std::vector<ErrorCase>& cases) {
    for (const auto& c : cases) {
        Sources sources;
        if (!c.system.empty()) {
            sources.system_file = system_file(c.system);
        }
        if (!c.user.empty()) {
            sources.user_file = user_file(c.user);
        }
        sources.environment = c.environment;
        sources.command_line = c.command_line;
        sources.arguments = c.arguments;
        const auto error = error_of(sources);
        EXPECT_EQ(error.kind, ErrorKind::usage) << c.name;
        EXPECT_EQ(error.message, c.message) << c.name;
        EXPECT_EQ(error.hint, c.hint) << c.name;
    }
}

const std::string k_lock_dir_hint =
    "set lock_dir in [defaults] of /etc/with-gpu/config.toml so that every user meets in one "
    "lock directory; for a single run use WITH_GPU_LOCK_DIR or --lock-dir";
const std::string k_banned_hint = "banned GPUs are set by the administrator in [defaults] of "
                                  "/etc/with-gpu/config.toml; to avoid a GPU yourself use exclude";

TEST(ConfigAdminKeysTest, ElsewhereTheyAreErrors) {
    expect_errors({
        {"lock_dir in user defaults",
         "",
         "[defaults]\nmax_util = 5\nlock_dir = \"/home/a/locks\"\n",
         {},
         {},
         k_user + ":3:1: lock_dir is only allowed in the system configuration file",
         k_lock_dir_hint},
        {"lock_dir in a user profile",
         "",
         "[profiles.llm]\n  lock_dir = \"/x\"\n",
         {},
         {},
         k_user + ":2:3: lock_dir is not allowed in a profile (profiles.llm)",
         k_lock_dir_hint},
        {"lock_dir in a system profile",
         "[profiles.llm]\nlock_dir = \"/x\"\n",
         "",
         {},
         {},
         k_system + ":2:1: lock_dir is not allowed in a profile (profiles.llm)",
         k_lock_dir_hint},
        {"banned in user defaults",
         "",
         "[defaults]\nbanned = [0]\n",
         {},
         {},
         k_user + ":2:1: banned is only allowed in the system configuration file",
         k_banned_hint},
        {"banned in a system profile",
         "[profiles.x]\nbanned = [0]\n",
         "",
         {},
         {},
         k_system + ":2:1: banned is not allowed in a profile (profiles.x)",
         k_banned_hint},
    });
}

TEST(ConfigAdminKeysTest, BannedCannotComeFromTheCommandLine) {
    Sources sources;
    sources.command_line["banned"] = "0";
    auto error = error_of(sources);
    EXPECT_EQ(error.kind, ErrorKind::failed);
    EXPECT_EQ(error.message,
              "internal error: configuration key \"banned\" cannot come from the command line");
    sources.command_line = {{"colour", "red"}};
    EXPECT_EQ(error_of(sources).kind, ErrorKind::failed);
}

// ---- value forms

TEST(ConfigValueTest, FileFormsAreNormalisedForTheCommandLineParsers) {
    struct Case {
        std::string line;
        std::string key;
        std::string text;
    };
    const std::vector<Case> cases{
        {"gpu = [0, 2]", "gpu", "0,2"},
        {"gpu = \"0, 2\"", "gpu", "0,2"},
        {"gpu = [\"GPU-8a3f\", \"00000000:17:00.0\"]", "gpu", "GPU-8a3f,00000000:17:00.0"},
        {"exclude = [1, \"name:T4\"]", "exclude", "1,name:T4"},
        {"exclude = \"name:V100,2\"", "exclude", "name:V100,2"},
        {"min_memory = 20480", "min_memory", "20480"},
        {"min_memory = \"20G\"", "min_memory", "20G"},
        {"min_memory = 0", "min_memory", "0"},
        {"timeout = 90", "timeout", "90"},
        {"timeout = \"5m\"", "timeout", "5m"},
        {"poll = \"500ms\"", "poll", "500ms"},
        {"strict = false", "strict", "false"},
        {"wait = true", "wait", "true"},
        {"require_idle = true", "require_idle", "true"},
        {"max_util = 0", "max_util", "0"},
        {"max_util = 100", "max_util", "100"},
        {"max_temp = 80", "max_temp", "80"},
        {"max_power = 250", "max_power", "250"},
        {"gpu_type = \"A100\"", "gpu_type", "A100"},
        {"nvml_library = \"/opt/nvidia/libnvidia-ml.so.1\"",
         "nvml_library",
         "/opt/nvidia/libnvidia-ml.so.1"},
    };
    for (const auto& c : cases) {
        const auto settings = resolved(with_user("[defaults]\n" + c.line + "\n"));
        EXPECT_EQ(settings.text(c.key), c.text) << c.line;
    }
}

TEST(ConfigValueTest, EnvironmentAndCommandLineFormsAreNormalised) {
    struct Case {
        std::string variable;
        std::string value;
        std::string key;
        std::optional<std::string> text;
    };
    const std::vector<Case> cases{
        {"WITH_GPU_WAIT", "1", "wait", "true"},
        {"WITH_GPU_WAIT", "0", "wait", "false"},
        {"WITH_GPU_WAIT", "TRUE", "wait", "true"},
        {"WITH_GPU_WAIT", "off", "wait", "false"},
        {"WITH_GPU_REQUIRE_IDLE", "yes", "require_idle", "true"},
        {"WITH_GPU_MAX_UTIL", "10%", "max_util", "10"},
        {"WITH_GPU_MAX_TEMP", "80C", "max_temp", "80"},
        {"WITH_GPU_MAX_POWER", "250w", "max_power", "250"},
        {"WITH_GPU_GPU", " 0 , 2 ", "gpu", "0,2"},
        {"WITH_GPU_EXCLUDE", "name:T4", "exclude", "name:T4"},
        {"WITH_GPU_MIN_MEMORY", "20GiB", "min_memory", "20GiB"},
        {"WITH_GPU_MIN_MEMORY", "", "min_memory", "2048"}, // empty counts as unset
        {"WITH_GPU_TIMEOUT", "1.5h", "timeout", "1.5h"},
        {"WITH_GPU_NVML_LIBRARY", "/x/libnvidia-ml.so.1", "nvml_library", "/x/libnvidia-ml.so.1"},
        {"WITH_GPU_UUIDS", "GPU-1", "gpu", std::nullopt}, // not ours to read
    };
    for (const auto& c : cases) {
        Sources sources;
        sources.environment[c.variable] = c.value;
        EXPECT_EQ(resolved(sources).text(c.key), c.text) << c.variable << "=" << c.value;
        if (const auto* setting = find_setting(c.key); setting && !c.value.empty() && c.text) {
            Sources cli;
            cli.command_line[c.key] = c.value;
            EXPECT_EQ(resolved(cli).text(c.key), c.text) << flag_label(*setting) << " " << c.value;
        }
    }
}

// ---- errors, with their exact messages

const std::string k_relative_hint =
    "a relative path would depend on the directory with-gpu starts in; use an absolute path, "
    "e.g. /var/lib/with-gpu";

TEST(ConfigErrorTest, FileErrors) {
    const std::string size_hint = "use a size such as 2048 (MiB), 20G, 20GiB, 500MB, 1.5T";
    const std::string duration_hint = "use a duration such as 90 (seconds), 250ms, 30s, 5m, 1.5h";
    const std::string toml_hint = "a configuration file is TOML: a [defaults] table and "
                                  "[profiles.NAME] tables of key = value lines";
    expect_errors({
        {"unknown key with a suggestion",
         "",
         "[defaults]\nmax_utl = 10\n",
         {},
         {},
         k_user + ":2:1: unknown key \"max_utl\"",
         "did you mean max_util?"},
        {"flag spelling",
         "",
         "[profiles.llm]\nmin-memory = \"20G\"\n",
         {},
         {},
         k_user + ":2:1: unknown key \"min-memory\"",
         "did you mean min_memory?"},
        {"unknown key without a close match",
         "[defaults]\ncolour = \"red\"\n",
         "",
         {},
         {},
         k_system + ":2:1: unknown key \"colour\"",
         known_keys()},
        {"wrong type: string for a number",
         "",
         "[defaults]\nmax_util = \"high\"\n",
         {},
         {},
         k_user + ":2:12: max_util: expected a whole number from 0 to 100, got a string",
         "e.g. max_util = 10"},
        {"wrong type: string for a boolean",
         "",
         "[defaults]\nstrict = \"yes\"\n",
         {},
         {},
         k_user + ":2:10: strict: expected true or false, got a string",
         "e.g. strict = true"},
        {"wrong type: float for a size",
         "",
         "[defaults]\nmin_memory = 1.5\n",
         {},
         {},
         k_user + ":2:14: min_memory: expected a size string such as \"20G\" or an integer "
                  "number of MiB, got a float",
         "e.g. min_memory = \"20G\""},
        {"wrong type: table for a list",
         "",
         "[defaults]\ngpu = { index = 1 }\n",
         {},
         {},
         k_user + ":2:7: gpu: expected an array of GPUs or a comma-separated string, got a table",
         "e.g. gpu = [0, 2]"},
        {"wrong type inside a list",
         "",
         "[defaults]\ngpu = [0, 1.5]\n",
         {},
         {},
         k_user + ":2:11: gpu: expected GPU indices or strings in the list, got a float",
         "e.g. gpu = [0, 2]"},
        {"out of range: percent",
         "",
         "[defaults]\nmax_util = 150\n",
         {},
         {},
         k_user + ":2:12: max_util: 150 is out of range (0 to 100)",
         "e.g. max_util = 10"},
        {"out of range: count 0",
         "",
         "[defaults]\ncount = 0\n",
         {},
         {},
         k_user + ":2:9: count: 0 is out of range (at least 1)",
         "e.g. count = 2"},
        {"out of range: count above what fits",
         "",
         "[defaults]\ncount = 99999999999\n",
         {},
         {},
         k_user + ":2:9: count: 99999999999 is out of range (at most 4294967295)",
         "e.g. count = 2"},
        {"out of range: negative MiB",
         "",
         "[defaults]\nmin_memory = -1\n",
         {},
         {},
         k_user + ":2:14: min_memory: -1 is out of range (at least 0)",
         "e.g. min_memory = \"20G\""},
        {"out of range: negative GPU index",
         "",
         "[defaults]\nexclude = [-1]\n",
         {},
         {},
         k_user + ":2:12: exclude: -1 is out of range (at least 0)",
         "e.g. exclude = [0, \"name:T4\"]"},
        {"out of range: poll 0",
         "",
         "[defaults]\npoll = 0\n",
         {},
         {},
         k_user + ":2:8: poll: 0 is out of range (at least 1)",
         "e.g. poll = \"10s\""},
        {"poll \"0s\"",
         "",
         "[defaults]\npoll = \"0s\"\n",
         {},
         {},
         k_user + ":2:8: poll: \"0s\" must be more than 0",
         "e.g. poll = \"10s\""},
        {"bad size",
         "",
         "[defaults]\nmin_memory = \"20X\"\n",
         {},
         {},
         k_user + ":2:14: min_memory: invalid size \"20X\": expected a number with an optional "
                  "unit (unknown unit \"X\")",
         size_hint},
        {"bad duration",
         "",
         "[profiles.x]\ntimeout = \"soon\"\n",
         {},
         {},
         k_user + ":2:11: timeout: invalid duration \"soon\": expected a number with an "
                  "optional unit (ms, s, m, h)",
         duration_hint},
        {"bad GPU reference",
         "",
         "[defaults]\ngpu = [\"name:T4\"]\n",
         {},
         {},
         k_user + ":2:8: gpu: item \"name:T4\": name: is only valid in --exclude",
         "use a comma-separated list of NVML indices (0,2), UUIDs or unique UUID prefixes "
         "(GPU-8a3f...), or PCI bus ids (00000000:17:00.0)"},
        {"empty list",
         "",
         "[defaults]\nexclude = []\n",
         {},
         {},
         k_user + ":2:11: exclude: the list is empty",
         "leave the key out instead"},
        {"empty string",
         "[defaults]\nlock_dir = \"\"\n",
         "",
         {},
         {},
         k_system + ":2:12: lock_dir: must not be empty",
         "e.g. lock_dir = \"/var/lib/with-gpu\""},
        {"relative lock_dir",
         "[defaults]\nlock_dir = \"wg\"\n",
         "",
         {},
         {},
         k_system + ":2:12: lock_dir: \"wg\" is not an absolute path",
         k_relative_hint},
        {"timeout of 0",
         "",
         "[defaults]\ntimeout = 0\n",
         {},
         {},
         k_user + ":2:11: timeout: 0 is out of range (1 to 31536000)",
         "e.g. timeout = \"5m\""},
        {"timeout over a year",
         "",
         "[defaults]\ntimeout = \"8761h\"\n",
         {},
         {},
         k_user + ":2:11: timeout: \"8761h\" is too long (at most 8760h)",
         "e.g. timeout = \"5m\""},
        {"TOML syntax error",
         "",
         "[defaults]\nmax_util = \n",
         {},
         {},
         k_user + ":2:12: Error while parsing key-value pair: expected value, saw '\\n'",
         toml_hint},
        {"TOML table header that no key can start (toml++ asserts here in debug builds)",
         "",
         "[`x]\n",
         {},
         {},
         k_user + ":1:2: Error while parsing key: expected bare key starting character or "
                  "string delimiter, saw '`'",
         toml_hint},
        {"TOML duplicate key",
         "[defaults]\ncount = 1\ncount = 2\n",
         "",
         {},
         {},
         k_system + ":3:9: Error while parsing key-value pair: cannot redefine existing integer "
                    "'count'",
         toml_hint},
        {"unknown top-level key",
         "",
         "colour = 1\n",
         {},
         {},
         k_user + ":1:1: unknown top-level key \"colour\"",
         "a configuration file holds a [defaults] table and [profiles.NAME] tables"},
        {"misspelt table",
         "",
         "[default]\ncount = 1\n",
         {},
         {},
         k_user + ":1:2: unknown top-level key \"default\"",
         "did you mean defaults?"},
        {"setting outside a table",
         "",
         "min_memory = \"20G\"\n[defaults]\n",
         {},
         {},
         k_user + ":1:1: min_memory must be in the [defaults] table or a [profiles.NAME] table",
         "add a line [defaults] above it"},
        {"defaults not a table",
         "",
         "defaults = 3\n",
         {},
         {},
         k_user + ":1:1: defaults must be a table, not an integer",
         "write [defaults] on a line of its own, with key = value lines below it"},
        {"profile not a table",
         "",
         "[profiles]\nllm = 1\n",
         {},
         {},
         k_user + ":2:1: profiles.llm must be a table, not an integer",
         "write [profiles.llm] on a line of its own, with key = value lines below it"},
        {"count with a range in one table",
         "",
         "[profiles.llm]\ncount = 2\nmax_gpus = 4\n",
         {},
         {},
         k_user + ":3:1: count cannot be combined with max_gpus",
         "use count for exactly N GPUs, or min_gpus and max_gpus for a range"},
        {"max below min in one table",
         "[defaults]\nmax_gpus = 2\nmin_gpus = 4\n",
         "",
         {},
         {},
         k_system + ":2:1: max_gpus 2 is below min_gpus 4",
         "max_gpus must be at least min_gpus (it defaults to it)"},
        {"strict without gpu_type",
         "",
         "[defaults]\nstrict = true\n",
         {},
         {},
         k_user + ":2:1: strict needs gpu_type",
         "strict only chooses among GPUs of gpu_type: set gpu_type too (e.g. --gpu-type "
         "A100), or leave strict out"},
        {"the first error in file order",
         "",
         "[defaults]\nzzz = 1\naaa = 2\n",
         {},
         {},
         k_user + ":2:1: unknown key \"zzz\"",
         known_keys()},
        {"errors in a profile that is not chosen",
         "",
         "[profiles.unused]\nmax_util = 101\n",
         {},
         {},
         k_user + ":2:12: max_util: 101 is out of range (0 to 100)",
         "e.g. max_util = 10"},
    });
}

TEST(ConfigErrorTest, EnvironmentErrors) {
    expect_errors({
        {"not a number",
         "",
         "",
         {{"WITH_GPU_MAX_UTIL", "abc"}},
         {},
         "WITH_GPU_MAX_UTIL=abc: \"abc\" is not a whole number",
         "e.g. WITH_GPU_MAX_UTIL=10"},
        {"out of range",
         "",
         "",
         {{"WITH_GPU_MAX_UTIL", "150%"}},
         {},
         "WITH_GPU_MAX_UTIL=150%: 150 is out of range (0 to 100)",
         "e.g. WITH_GPU_MAX_UTIL=10"},
        {"too large",
         "",
         "",
         {{"WITH_GPU_MAX_TEMP", "99999999999"}},
         {},
         "WITH_GPU_MAX_TEMP=99999999999: 99999999999 is out of range (at most 4294967295)",
         "e.g. WITH_GPU_MAX_TEMP=80"},
        {"count too large",
         "",
         "",
         {{"WITH_GPU_COUNT", "4294967296"}},
         {},
         "WITH_GPU_COUNT=4294967296: 4294967296 is out of range (at most 4294967295)",
         "e.g. WITH_GPU_COUNT=2"},
        {"count 0",
         "",
         "",
         {{"WITH_GPU_COUNT", "0"}},
         {},
         "WITH_GPU_COUNT=0: 0 is out of range (at least 1)",
         "e.g. WITH_GPU_COUNT=2"},
        {"not a boolean",
         "",
         "",
         {{"WITH_GPU_WAIT", "maybe"}},
         {},
         "WITH_GPU_WAIT=maybe: \"maybe\" is not a boolean (use 1, 0, true, false, yes, no, on "
         "or off)",
         "e.g. WITH_GPU_WAIT=true"},
        {"bad size",
         "",
         "",
         {{"WITH_GPU_MIN_MEMORY", "lots"}},
         {},
         "WITH_GPU_MIN_MEMORY=lots: invalid size \"lots\": expected a number with an optional "
         "unit",
         "use a size such as 2048 (MiB), 20G, 20GiB, 500MB, 1.5T"},
        {"bad list",
         "",
         "",
         {{"WITH_GPU_GPU", "0,,1"}},
         {},
         "WITH_GPU_GPU=0,,1: item \"0,,1\": empty item in the list",
         "use a comma-separated list of NVML indices (0,2), UUIDs or unique UUID prefixes "
         "(GPU-8a3f...), or PCI bus ids (00000000:17:00.0)"},
        {"relative lock directory",
         "",
         "",
         {{"WITH_GPU_LOCK_DIR", "wg"}},
         {},
         "WITH_GPU_LOCK_DIR=wg: \"wg\" is not an absolute path",
         k_relative_hint},
        {"timeout of 0",
         "",
         "",
         {{"WITH_GPU_TIMEOUT", "0ms"}},
         {},
         "WITH_GPU_TIMEOUT=0ms: \"0ms\" must be more than 0",
         "e.g. WITH_GPU_TIMEOUT=5m"},
        {"count and range",
         "",
         "",
         {{"WITH_GPU_COUNT", "2"}, {"WITH_GPU_MIN_GPUS", "1"}},
         {},
         "WITH_GPU_COUNT cannot be combined with WITH_GPU_MIN_GPUS",
         "use WITH_GPU_COUNT for exactly N GPUs, or WITH_GPU_MIN_GPUS and WITH_GPU_MAX_GPUS "
         "for a range"},
    });
}

TEST(ConfigErrorTest, CommandLineErrors) {
    expect_errors({
        {"not a number",
         "",
         "",
         {},
         {{"max_util", "abc"}},
         "--max-util: \"abc\" is not a whole number",
         "e.g. --max-util 10"},
        {"count too large",
         "",
         "",
         {},
         {{"count", "4294967296"}},
         "-n/--count: 4294967296 is out of range (at most 4294967295)",
         "e.g. -n/--count 2"},
        {"bad size",
         "",
         "",
         {},
         {{"min_memory", "20X"}},
         "--min-memory: invalid size \"20X\": expected a number with an optional unit (unknown "
         "unit \"X\")",
         "use a size such as 2048 (MiB), 20G, 20GiB, 500MB, 1.5T"},
        {"empty path",
         "",
         "",
         {},
         {{"lock_dir", ""}},
         "--lock-dir: must not be empty",
         "e.g. --lock-dir /var/lib/with-gpu"},
        {"relative path",
         "",
         "",
         {},
         {{"lock_dir", "./wg"}},
         "--lock-dir: \"./wg\" is not an absolute path",
         k_relative_hint},
        {"timeout too long",
         "",
         "",
         {},
         {{"timeout", "9999999999"}},
         "--timeout: \"9999999999\" is too long (at most 8760h)",
         "e.g. --timeout 5m"},
        {"count and range",
         "",
         "",
         {},
         {{"count", "2"}, {"max_gpus", "3"}},
         "-n/--count cannot be combined with --max-gpus",
         "use -n/--count for exactly N GPUs, or --min-gpus and --max-gpus for a range"},
        {"max below min",
         "",
         "",
         {},
         {{"min_gpus", "3"}, {"max_gpus", "2"}},
         "--max-gpus 2 is below --min-gpus 3",
         "--max-gpus must be at least --min-gpus (it defaults to it)"},
        {"strict without gpu_type",
         "",
         "",
         {},
         {{"strict", "true"}},
         "--strict needs --gpu-type",
         "strict only chooses among GPUs of gpu_type: set gpu_type too (e.g. --gpu-type "
         "A100), or leave strict out"},
    });
}

TEST(ConfigErrorTest, StrictIsFineWhenGpuTypeComesFromAnotherSource) {
    Sources sources = with_system("[defaults]\ngpu_type = \"H100\"\n");
    sources.command_line["strict"] = "true";
    const auto settings = resolved(sources);
    EXPECT_TRUE(settings.is_true("strict"));
    EXPECT_EQ(settings.text("gpu_type"), "H100");
    // strict = false needs nothing.
    EXPECT_FALSE(resolved(with_user("[defaults]\nstrict = false\n")).is_true("strict"));
}

// ---- show()

TEST(ConfigShowTest, OneLinePerKeyWithOrigins) {
    Sources sources;
    sources.system_file = system_file("[defaults]\n"
                                      "lock_dir = \"/var/lib/with-gpu\"\n"
                                      "banned = [\"name:T4\"]\n");
    sources.user_file = user_file("[defaults]\n"
                                  "max_util = 50\n"
                                  "[profiles.llm]\n"
                                  "min_memory = \"20G\"\n"
                                  "exclude = [0]\n");
    sources.environment = {{"WITH_GPU_PROFILE", "llm"}, {"WITH_GPU_WAIT", "1"}};
    sources.command_line = {{"count", "2"}};
    const std::string text = show(resolved(sources));
    const auto lines = show_lines(text);
    // The profile, then one line per setting in table order.
    ASSERT_EQ(lines.size(), settings().size() + 1) << text;
    EXPECT_EQ(lines[0], "# profile llm (from WITH_GPU_PROFILE)");
    for (std::size_t i = 0; i < settings().size(); ++i) {
        EXPECT_EQ(lines[i + 1].rfind(std::string(settings()[i].name) + " = ", 0), 0U) << text;
    }
    for (const char* line :
         {"count = 2 # -n/--count",
          "min_gpus = (unset)",
          // NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one line, split for width
          "exclude = 0,name:T4 # profile llm (/home/a/.config/with-gpu/config.toml:5:1) + banned "
          "(/etc/with-gpu/config.toml:3:1)",
          "min_memory = 20G # profile llm (/home/a/.config/with-gpu/config.toml:4:1)",
          "max_util = 50 # /home/a/.config/with-gpu/config.toml:2:1",
          "wait = true # WITH_GPU_WAIT",
          "poll = 2s # built-in default",
          "lock_dir = /var/lib/with-gpu # /etc/with-gpu/config.toml:2:1",
          "banned = name:T4 # /etc/with-gpu/config.toml:3:1"}) {
        EXPECT_NE(std::find(lines.begin(), lines.end(), line), lines.end()) << line << "\n" << text;
    }
    // Values are aligned on the longest "key = value" that has an origin: one column of '#'.
    std::set<std::size_t> columns;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.find(" # ") != std::string::npos) {
            columns.insert(line.find('#'));
        }
    }
    EXPECT_EQ(columns.size(), 1U) << text;
}

TEST(ConfigShowTest, BannedAloneIsShownAsTheSourceOfExclude) {
    const auto text = show(resolved(with_system("[defaults]\nbanned = [2]\n")));
    EXPECT_NE(text.find("exclude = 2               # banned (/etc/with-gpu/config.toml:2:1)\n"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find("# profile"), std::string::npos);
}

// ---- paths

TEST(ConfigPathTest, StandardPaths) {
    EXPECT_EQ(system_config_path(), "/etc/with-gpu/config.toml");
    struct Case {
        std::string xdg;
        std::string home;
        std::optional<std::string> expected;
    };
    const std::vector<Case> cases{
        {"/home/a/.cfg", "/home/a", "/home/a/.cfg/with-gpu/config.toml"},
        {"/home/a/.cfg/", "/home/a", "/home/a/.cfg/with-gpu/config.toml"},
        {"", "/home/a", "/home/a/.config/with-gpu/config.toml"},
        {"relative/dir", "/home/a/", "/home/a/.config/with-gpu/config.toml"},
        {"", "", std::nullopt},
        {"relative", "", std::nullopt},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(user_config_path(c.xdg, c.home), c.expected) << c.xdg << " | " << c.home;
    }
}

// ---- the examples in docs/config.md

const std::string k_doc_system = R"(
[defaults]
# Every user must meet in one lock directory, or their claims cannot see each other.
lock_dir = "/var/lib/with-gpu"
# The T4 drives the displays, and GPU 7 has a broken fan: nobody gets them.
banned = ["name:T4", 7]
min_memory = "4G"

[profiles.small]
# Offered to everyone: with-gpu --profile small ...
count = 1
min_memory = "8G"
max_util = 20
)";

const std::string k_doc_user = R"(
[defaults]
max_util = 50
wait = true
timeout = "30m"

[profiles.llm]
# with-gpu --profile llm torchrun train.py
min_gpus = 2
max_gpus = 4
min_memory = "40G"
gpu_type = "A100"
strict = true
require_idle = true
exclude = [0]

[profiles.small]
# Merged with the system file's [profiles.small]; these keys win.
max_util = 10
)";

TEST(ConfigDocsTest, ExampleFilesBehaveAsDocumented) {
    Sources sources;
    sources.system_file = system_file(k_doc_system.substr(1));
    sources.user_file = user_file(k_doc_user.substr(1));
    sources.profile = "small";
    auto settings = resolved(sources);
    EXPECT_EQ(settings.text("count"), "1");
    EXPECT_EQ(settings.text("min_memory"), "8G");
    EXPECT_EQ(settings.text("max_util"), "10");
    EXPECT_EQ(settings.text("wait"), "true");
    EXPECT_EQ(settings.text("timeout"), "30m");
    EXPECT_EQ(settings.text("lock_dir"), "/var/lib/with-gpu");
    EXPECT_EQ(settings.text("exclude"), "name:T4,7");

    sources.profile.reset();
    sources.environment["WITH_GPU_PROFILE"] = "llm";
    sources.command_line["count"] = "2";
    settings = resolved(sources);
    EXPECT_EQ(settings.text("exclude"), "0,name:T4,7");
    EXPECT_EQ(settings.text("count"), "2");
    EXPECT_EQ(settings.find("min_gpus"), nullptr);
    // The --show-config example in docs/config.md, exactly as printed there.
    std::ifstream file(WITH_GPU_SOURCE_DIR "/docs/config.md");
    ASSERT_TRUE(file) << "cannot read docs/config.md";
    std::string documented;
    bool in_example = false;
    for (std::string line; std::getline(file, line);) {
        if (line == "$ WITH_GPU_PROFILE=llm with-gpu -n 2 --show-config") {
            in_example = true;
        } else if (in_example && line.rfind("```", 0) == 0) {
            break;
        } else if (in_example) {
            documented += line + "\n";
        }
    }
    EXPECT_EQ(show(settings), documented);
}

// ---- a library caller's arguments (the Python keyword arguments)

TEST(ConfigArgumentTest, KeywordsSetSettingsAboveEverySource) {
    Sources sources = with_user("[defaults]\nmax_util = 50\n");
    sources.environment["WITH_GPU_MAX_UTIL"] = "40";
    sources.arguments = {{"max_util", "10"}, {"gpus", "0, 2"}, {"min_memory", "20G"}};
    const auto settings = resolved(sources);
    EXPECT_EQ(*settings.find("max_util"), (Value{"10", {Kind::argument, "max_util="}}));
    EXPECT_EQ(*settings.find("gpu"), (Value{"0,2", {Kind::argument, "gpus="}}));
    const Launch launch = launch_from(settings);
    EXPECT_EQ(launch.request.max_utilization_percent, 10U);
    ASSERT_EQ(launch.request.only.size(), 2U);
    EXPECT_EQ(launch.request.only[1].index, 2U);
    EXPECT_EQ(launch.request.min_free_bytes, 20ULL << 30U);
}

TEST(ConfigArgumentTest, ErrorsNameTheKeyword) {
    const std::string size_hint = "use a size such as 2048 (MiB), 20G, 20GiB, 500MB, 1.5T";
    expect_errors({
        {"unknown keyword",
         "",
         "",
         {},
         {},
         "unknown setting \"min_memroy\"",
         "did you mean min_memory?",
         {{"min_memroy", "1G"}}},
        {"the flag's name is no keyword",
         "",
         "",
         {},
         {},
         "unknown setting \"gpu\"",
         "did you mean gpus?",
         {{"gpu", "0"}}},
        {"banned is the administrator's",
         "",
         "",
         {},
         {},
         "unknown setting \"banned\"",
         known_settings(),
         {{"banned", "0"}}},
        {"bad size",
         "",
         "",
         {},
         {},
         "min_memory: invalid size \"20Q\": expected a number with an optional unit (unknown "
         "unit \"Q\")",
         size_hint,
         {{"min_memory", "20Q"}}},
        {"bad number",
         "",
         "",
         {},
         {},
         "max_util: \"x\" is not a whole number",
         "e.g. max_util=10",
         {{"max_util", "x"}}},
        {"bad boolean",
         "",
         "",
         {},
         {},
         "wait: \"maybe\" is not a boolean (use 1, 0, true, false, yes, no, on or off)",
         "e.g. wait=True",
         {{"wait", "maybe"}}},
        {"bad list",
         "",
         "",
         {},
         {},
         "gpus: item \"name:T4\": name: is only valid in --exclude",
         "use a comma-separated list of NVML indices (0,2), UUIDs or unique UUID prefixes "
         "(GPU-8a3f...), or PCI bus ids (00000000:17:00.0)",
         {{"gpus", "name:T4"}}},
        {"count and min_gpus",
         "",
         "",
         {},
         {},
         "count cannot be combined with min_gpus",
         "use count for exactly N GPUs, or min_gpus and max_gpus for a range",
         {{"count", "2"}, {"min_gpus", "2"}}},
        {"strict without a type",
         "",
         "",
         {},
         {},
         "strict needs gpu_type",
         "strict only chooses among GPUs of gpu_type: set gpu_type too (e.g. --gpu-type "
         "A100), or leave strict out",
         {{"strict", "true"}}},
    });
}

// Each setting's value arrives where it takes effect.
TEST(ConfigLaunchTest, EverySettingIsApplied) {
    Sources sources = with_system("[defaults]\nbanned = [\"name:T4\"]\n");
    sources.arguments = {{"min_gpus", "2"},
                         {"max_gpus", "3"},
                         {"gpus", "0,1,2,3"},
                         {"exclude", "3"},
                         {"gpu_type", "A100"},
                         {"strict", "true"},
                         {"min_memory", "1G"},
                         {"max_util", "5"},
                         {"max_temp", "70"},
                         {"max_power", "300"},
                         {"require_idle", "yes"},
                         {"timeout", "90"},
                         {"poll", "500ms"},
                         {"lock_dir", "/srv/locks"},
                         {"nvml_library", "/x.so"}};
    const Launch launch = launch_from(resolved(sources));
    const selection::Request& r = launch.request;
    EXPECT_EQ(r.min_gpus, 2U);
    EXPECT_EQ(r.max_gpus, 3U);
    EXPECT_EQ(r.only.size(), 4U);
    ASSERT_EQ(r.exclude.size(), 2U); // with the banned GPUs
    EXPECT_EQ(r.exclude[1].kind, selection::GpuRef::Kind::name_substring);
    ASSERT_EQ(r.banned.size(), 1U);
    EXPECT_EQ(r.gpu_type, "A100");
    EXPECT_TRUE(r.strict_type);
    EXPECT_EQ(r.min_free_bytes, 1ULL << 30U);
    EXPECT_EQ(r.max_utilization_percent, 5U);
    EXPECT_EQ(r.max_temperature_c, 70U);
    EXPECT_EQ(r.max_power_w, 300.0);
    EXPECT_TRUE(r.require_idle);
    EXPECT_TRUE(launch.wait); // implied by timeout
    EXPECT_EQ(launch.timeout, std::chrono::seconds(90));
    EXPECT_EQ(launch.poll, std::chrono::milliseconds(500));
    EXPECT_EQ(launch.lock_dir, "/srv/locks");
    EXPECT_EQ(launch.nvml_library, "/x.so");

    sources.arguments = {{"count", "4"}};
    const Launch counted = launch_from(resolved(sources));
    EXPECT_EQ(counted.request.min_gpus, 4U);
    EXPECT_EQ(counted.request.max_gpus, 4U);
    EXPECT_FALSE(counted.wait);
    EXPECT_EQ(counted.poll, std::chrono::seconds(2));
    EXPECT_EQ(counted.lock_dir, "/tmp/with-gpu");
}

// docs/config.md's table of keys lists every setting with its variable and flag, in table
// order: a setting added to the table and not to the documentation fails here.
TEST(ConfigDocsTest, TheKeysTableOfDocsConfigMdMatchesTheSettings) {
    std::ifstream file(WITH_GPU_SOURCE_DIR "/docs/config.md");
    ASSERT_TRUE(file) << "cannot read docs/config.md";
    std::vector<std::string> documented;
    for (std::string line; std::getline(file, line);) {
        if (line.rfind("| `", 0) == 0) {
            documented.push_back(line);
        }
    }
    std::vector<std::string> expected;
    for (const auto& setting : settings()) {
        const std::string variable = env_var(setting);
        std::string flag = long_flag(setting);
        if (setting.short_flag != '\0') {
            flag = fmt::format("`-{}`, `{}`", setting.short_flag, flag);
        } else if (!flag.empty()) {
            flag = fmt::format("`{}`", flag);
        }
        expected.push_back(fmt::format("| `{}` | {} | {} |",
                                       setting.name,
                                       variable.empty() ? "—" : "`" + variable + "`",
                                       flag.empty() ? "—" : flag));
    }
    ASSERT_EQ(documented.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(documented[i].rfind(expected[i], 0), 0U) << documented[i];
    }
}

// toml++ 3.3.0 reached __builtin_unreachable() for most non-ASCII characters where it looked
// for whitespace (config/toml.hpp). Under UBSan (the asan preset) these inputs abort the test
// without the workaround; with it they are ordinary syntax errors, or valid text.
TEST(ConfigTomlTest, NonAsciiCharactersWhereWhitespaceMayBeAreSyntaxErrors) {
    const std::vector<std::string> documents = {
        "[defaults]\nmax_util = 10 \xc3\xa9\n", // U+00E9 after a value
        "\xcc\xaa",                             // U+032A alone (upstream issue #295)
        "[defaults]\n\xe3\x81\x82 = 1\n",       // U+3042 (Hiragana) where a key starts
        "x = \"\"\"\\\n\xc2\xa7\"\"\"\n",       // U+00A7 after a line-ending backslash (#190)
        "[defaults]\ncount = 1\xef\xac\x80\n",  // U+FB00 (index 63 of the generated table)
    };
    for (const auto& text : documents) {
        const auto error = error_of(with_user(text));
        EXPECT_EQ(error.kind, ErrorKind::usage) << text;
        EXPECT_EQ(error.message.rfind(k_user + ":", 0), 0U) << error.message;
    }
}

TEST(ConfigTomlTest, NonAsciiInStringsAndCommentsIsFine) {
    const auto settings = resolved(with_user("# f\xc3\xbcr Ren\xc3\xa9 \xe3\x81\x82\n[defaults]\n"
                                             "gpu_type = \"Caf\xc3\xa9\"  # \xef\xac\x80\n"
                                             "max_util = 10\n"));
    EXPECT_EQ(settings.text("gpu_type"), "Caf\xc3\xa9");
    EXPECT_EQ(settings.text("max_util"), "10");
}

} // namespace
} // namespace withgpu::config
