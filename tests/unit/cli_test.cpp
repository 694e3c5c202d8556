#include "cli/options.hpp"

#include <gtest/gtest.h>

#include <variant>

namespace withgpu::cli {
namespace {

Result<ParseResult> parse_args(const std::vector<std::string>& args,
                               const std::map<std::string, std::string>& env = {}) {
    return parse(args, env);
}

Options options_of(const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env = {}) {
    auto result = parse_args(args, env);
    EXPECT_TRUE(result.has_value()) << (result ? "" : result.error().message);
    return std::get<Options>(*result);
}

Error error_of(const std::vector<std::string>& args) {
    auto result = parse_args(args);
    EXPECT_FALSE(result.has_value());
    return result ? Error{} : result.error();
}

TEST(CliTest, CommandAndItsOptionsAreSeparated) {
    auto o = options_of({"-n", "2", "python", "train.py", "-n", "5", "--status"});
    EXPECT_EQ(o.mode, Options::Mode::run);
    EXPECT_EQ(o.launch.request.min_gpus, 2U);
    EXPECT_EQ(o.launch.request.max_gpus, 2U);
    EXPECT_EQ(o.command, (std::vector<std::string>{"python", "train.py", "-n", "5", "--status"}));
}

TEST(CliTest, DoubleDashIsDropped) {
    auto o = options_of({"--", "-weird-name", "x"});
    EXPECT_EQ(o.command, (std::vector<std::string>{"-weird-name", "x"}));
}

TEST(CliTest, DefaultsMatchTheOriginalWithGpu) {
    auto o = options_of({"true"});
    EXPECT_EQ(o.launch.request.min_gpus, 1U);
    EXPECT_EQ(o.launch.request.max_gpus, 1U);
    ASSERT_TRUE(o.launch.request.min_free_bytes.has_value());
    EXPECT_EQ(*o.launch.request.min_free_bytes, 2048ULL * 1024 * 1024);
    EXPECT_EQ(o.launch.lock_dir, "/tmp/with-gpu");
    EXPECT_EQ(o.launch.nvml_library, "");
    EXPECT_FALSE(o.launch.request.require_idle);
}

TEST(CliTest, SelectionFlagsFillTheRequest) {
    auto o = options_of({"--min-memory",
                         "20G",
                         "--max-util",
                         "10%",
                         "--max-temp",
                         "80C",
                         "--max-power",
                         "250W",
                         "--require-idle",
                         "--gpu",
                         "0,2",
                         "--exclude",
                         "name:V100",
                         "--gpu-type",
                         "A100",
                         "--strict",
                         "true"});
    EXPECT_EQ(*o.launch.request.min_free_bytes, 20ULL << 30U);
    EXPECT_EQ(*o.launch.request.max_utilization_percent, 10U);
    EXPECT_EQ(*o.launch.request.max_temperature_c, 80U);
    EXPECT_DOUBLE_EQ(*o.launch.request.max_power_w, 250.0);
    EXPECT_TRUE(o.launch.request.require_idle);
    EXPECT_EQ(o.launch.request.only.size(), 2U);
    ASSERT_EQ(o.launch.request.exclude.size(), 1U);
    EXPECT_EQ(o.launch.request.exclude[0].kind, selection::GpuRef::Kind::name_substring);
    EXPECT_EQ(*o.launch.request.gpu_type, "A100");
    EXPECT_TRUE(o.launch.request.strict_type);
}

TEST(CliTest, MinAndMaxGpus) {
    auto o = options_of({"--min-gpus", "2", "true"});
    EXPECT_EQ(o.launch.request.min_gpus, 2U);
    EXPECT_EQ(o.launch.request.max_gpus, 2U); // max defaults to min
    o = options_of({"--max-gpus", "4", "true"});
    EXPECT_EQ(o.launch.request.min_gpus, 1U);
    EXPECT_EQ(o.launch.request.max_gpus, 4U);
    o = options_of({"--min-gpus", "2", "--max-gpus", "4", "true"});
    EXPECT_EQ(o.launch.request.min_gpus, 2U);
    EXPECT_EQ(o.launch.request.max_gpus, 4U);
}

TEST(CliTest, ConfigurationFilesAndProfiles) {
    ConfigFiles files;
    files.system = config::ConfigFile{"/etc/with-gpu/config.toml",
                                      "[defaults]\nlock_dir = \"/srv/gpu-locks\"\n"
                                      "banned = [\"name:T4\"]\n"};
    files.user = config::ConfigFile{"/home/a/.config/with-gpu/config.toml",
                                    "[defaults]\nmax_util = 10\n[profiles.llm]\n"
                                    "min_memory = \"40G\"\ncount = 2\nwait = true\n"};
    auto parsed = parse({"--profile", "llm", "true"}, {}, files);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
    const auto& o = std::get<Options>(*parsed);
    EXPECT_EQ(o.launch.lock_dir, "/srv/gpu-locks");
    EXPECT_EQ(*o.launch.request.max_utilization_percent, 10U);
    EXPECT_EQ(*o.launch.request.min_free_bytes, 40ULL << 30U);
    EXPECT_EQ(o.launch.request.min_gpus, 2U);
    EXPECT_TRUE(o.launch.wait);
    ASSERT_EQ(o.launch.request.exclude.size(), 1U); // banned GPUs are always excluded
    EXPECT_EQ(o.launch.request.exclude[0].kind, selection::GpuRef::Kind::name_substring);

    // Flags beat the profile; a configured wait does not apply to --status.
    parsed = parse({"--profile", "llm", "-n", "1", "--min-memory", "1G", "true"}, {}, files);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(std::get<Options>(*parsed).launch.request.min_gpus, 1U);
    EXPECT_EQ(*std::get<Options>(*parsed).launch.request.min_free_bytes, 1ULL << 30U);
    parsed = parse({"--profile", "llm", "--status"}, {}, files);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_FALSE(std::get<Options>(*parsed).launch.wait);

    auto shown = parse({"--profile", "llm", "--show-config"}, {}, files);
    ASSERT_TRUE(shown.has_value());
    const auto& text = std::get<Information>(*shown).text;
    EXPECT_NE(text.find("min_memory"), std::string::npos) << text;
    EXPECT_NE(text.find("profile llm"), std::string::npos) << text;

    auto bad =
        parse({"true"},
              {},
              ConfigFiles{std::nullopt, config::ConfigFile{"u.toml", "[defaults]\nmax_utl = 5\n"}});
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().kind, ErrorKind::usage);
    EXPECT_EQ(bad.error().message.rfind("u.toml:2:1", 0), 0U) << bad.error().message;
}

TEST(CliTest, EnvironmentStandsInForFlagsAndFlagsWin) {
    std::map<std::string, std::string> env{{"WITH_GPU_LOCK_DIR", "/srv/locks"},
                                           {"WITH_GPU_NVML_LIBRARY", "/opt/libnvidia-ml.so.1"},
                                           {"WITH_GPU_MAX_UTIL", "20"}};
    auto o = options_of({"true"}, env);
    EXPECT_EQ(o.launch.lock_dir, "/srv/locks");
    EXPECT_EQ(o.launch.nvml_library, "/opt/libnvidia-ml.so.1");
    EXPECT_EQ(*o.launch.request.max_utilization_percent, 20U);
    o = options_of({"--lock-dir", "/other", "--nvml-library", "x.so", "--max-util", "5", "true"},
                   env);
    EXPECT_EQ(*o.launch.request.max_utilization_percent, 5U);
    EXPECT_EQ(o.launch.lock_dir, "/other");
    EXPECT_EQ(o.launch.nvml_library, "x.so");
}

TEST(CliTest, Modes) {
    EXPECT_EQ(options_of({"--status"}).mode, Options::Mode::status);
    auto o = options_of({"--status", "--json"});
    EXPECT_TRUE(o.json);
    o = options_of({"--dry-run", "-n", "2"});
    EXPECT_EQ(o.mode, Options::Mode::dry_run);
    EXPECT_TRUE(o.command.empty());
    o = options_of({"--dry-run", "--json", "python", "x.py"});
    EXPECT_EQ(o.mode, Options::Mode::dry_run);
}

TEST(CliTest, HelpAndVersionAreInformation) {
    auto help = parse_args({"--help"});
    ASSERT_TRUE(help.has_value());
    const auto& text = std::get<Information>(*help).text;
    EXPECT_NE(text.find("Examples:"), std::string::npos);
    EXPECT_NE(text.find("--min-memory"), std::string::npos);
    auto version = parse_args({"--version"});
    ASSERT_TRUE(version.has_value());
    EXPECT_EQ(std::get<Information>(*version).text.rfind("with-gpu ", 0), 0U);
}

// Every usage error with its exact message and hint, as with-gpu prints them after
// "with-gpu: " and "with-gpu: hint: ".
TEST(CliTest, UsageErrorsSayExactlyWhatIsWrong) {
    struct Case {
        std::vector<std::string> args;
        std::string message;
        std::string hint;
    };
    const std::vector<Case> cases{
        {{},
         "no command given",
         "usage: with-gpu [OPTIONS] [--] COMMAND [ARGS...]; see with-gpu --help"},
        {{"--bogus", "x"},
         "unknown option --bogus",
         "see with-gpu --help; put the command after -- if it starts with '-'"},
        {{"--frobnicate", "python"},
         "unknown option --frobnicate",
         "see with-gpu --help; put the command after -- if it starts with '-'"},
        {{"-n", "0", "x"}, "-n/--count: 0 is out of range (at least 1)", "e.g. -n/--count 2"},
        {{"-n", "x", "x"}, "-n/--count: \"x\" is not a whole number", "e.g. -n/--count 2"},
        {{"-n", "4294967296", "x"},
         "-n/--count: 4294967296 is out of range (at most 4294967295)",
         "e.g. -n/--count 2"},
        {{"-n", "2", "--max-gpus", "3", "x"},
         "-n/--count cannot be combined with --max-gpus",
         "use -n/--count for exactly N GPUs, or --min-gpus and --max-gpus for a range"},
        {{"-n", "2", "--min-gpus", "2", "x"},
         "-n/--count cannot be combined with --min-gpus",
         "use -n/--count for exactly N GPUs, or --min-gpus and --max-gpus for a range"},
        {{"--min-gpus", "3", "--max-gpus", "2", "x"},
         "--max-gpus 2 is below --min-gpus 3",
         "--max-gpus must be at least --min-gpus (it defaults to it)"},
        {{"--min-gpus", "0", "x"},
         "--min-gpus: 0 is out of range (at least 1)",
         "e.g. --min-gpus 2"},
        {{"--max-gpus", "x", "x"}, "--max-gpus: \"x\" is not a whole number", "e.g. --max-gpus 4"},
        {{"--min-memory", "lots", "x"},
         "--min-memory: invalid size \"lots\": expected a number with an optional unit",
         "use a size such as 2048 (MiB), 20G, 20GiB, 500MB, 1.5T"},
        {{"--min-memory", "20Q", "x"},
         "--min-memory: invalid size \"20Q\": expected a number with an optional unit (unknown "
         "unit \"Q\")",
         "use a size such as 2048 (MiB), 20G, 20GiB, 500MB, 1.5T"},
        {{"--min-memory", "-5G", "x"},
         "--min-memory: invalid size \"-5G\": must not be negative",
         "use a size such as 2048 (MiB), 20G, 20GiB, 500MB, 1.5T"},
        {{"--max-util", "150", "x"},
         "--max-util: 150 is out of range (0 to 100)",
         "e.g. --max-util 10"},
        {{"--max-util", "abc", "x"},
         "--max-util: \"abc\" is not a whole number",
         "e.g. --max-util 10"},
        {{"--max-temp", "-1", "x"},
         "--max-temp: \"-1\" is not a whole number",
         "e.g. --max-temp 80"},
        {{"--max-temp", "hot", "x"},
         "--max-temp: \"hot\" is not a whole number",
         "e.g. --max-temp 80"},
        {{"--max-power", "250X", "x"},
         "--max-power: \"250X\" is not a whole number",
         "e.g. --max-power 250"},
        {{"--strict", "x"},
         "--strict needs --gpu-type",
         "strict only chooses among GPUs of gpu_type: set gpu_type too (e.g. --gpu-type A100), or "
         "leave strict out"},
        {{"--gpu-type", "", "x"}, "--gpu-type: must not be empty", "e.g. --gpu-type A100"},
        {{"--json", "x"}, "--json is for --status and --dry-run", "e.g. with-gpu --status --json"},
        {{"--status", "x"},
         "--status takes no command (got \"x\")",
         "use with-gpu --status alone, or leave --status out to run the command"},
        {{"--status", "--dry-run"},
         "--status and --dry-run cannot be combined",
         "--status shows every GPU; --dry-run shows what a request would get"},
        {{"--gpu", "name:A100", "x"},
         "--gpu: item \"name:A100\": name: is only valid in --exclude",
         "use a comma-separated list of NVML indices (0,2), UUIDs or unique UUID prefixes "
         "(GPU-8a3f...), or PCI bus ids (00000000:17:00.0)"},
        {{"--gpu", "zero", "x"},
         "--gpu: item \"zero\": not a GPU index, UUID or PCI bus id",
         "use a comma-separated list of NVML indices (0,2), UUIDs or unique UUID prefixes "
         "(GPU-8a3f...), or PCI bus ids (00000000:17:00.0)"},
        {{"--gpu", "0,,1", "x"},
         "--gpu: item \"0,,1\": empty item in the list",
         "use a comma-separated list of NVML indices (0,2), UUIDs or unique UUID prefixes "
         "(GPU-8a3f...), or PCI bus ids (00000000:17:00.0)"},
        {{"--exclude", "", "x"},
         "--exclude: item \"\": empty item in the list",
         "use a comma-separated list of NVML indices (0,2), UUIDs or unique UUID prefixes "
         "(GPU-8a3f...), or PCI bus ids (00000000:17:00.0), or name:SUBSTRING to match the model "
         "name"},
        {{"--lock-dir", "", "x"},
         "--lock-dir: must not be empty",
         "e.g. --lock-dir /var/lib/with-gpu"},
        {{"--lock-dir", "rel", "x"},
         "--lock-dir: \"rel\" is not an absolute path",
         "a relative path would depend on the directory with-gpu starts in; use an absolute path, "
         "e.g. /var/lib/with-gpu"},
        {{"--nvml-library", "", "x"},
         "--nvml-library: must not be empty",
         "e.g. --nvml-library /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"},
        {{"--timeout", "0", "x"}, "--timeout: \"0\" must be more than 0", "e.g. --timeout 5m"},
        {{"--timeout", "9999999999", "x"},
         "--timeout: \"9999999999\" is too long (at most 8760h)",
         "e.g. --timeout 5m"},
        {{"--timeout", "abc", "x"},
         "--timeout: invalid duration \"abc\": expected a number with an optional unit (ms, s, m, "
         "h)",
         "use a duration such as 90 (seconds), 250ms, 30s, 5m, 1.5h"},
        {{"--timeout", "8761h", "x"},
         "--timeout: \"8761h\" is too long (at most 8760h)",
         "e.g. --timeout 5m"},
        {{"--poll", "5ms", "x"}, "--poll: \"5ms\" is too short (at least 10ms)", "e.g. --poll 10s"},
        {{"--poll", "0", "x"}, "--poll: \"0\" must be more than 0", "e.g. --poll 10s"},
        {{"--poll", "x", "x"},
         "--poll: invalid duration \"x\": expected a number with an optional unit (ms, s, m, h)",
         "use a duration such as 90 (seconds), 250ms, 30s, 5m, 1.5h"},
        {{"--watch", "1s"}, "--watch is for --status", "e.g. with-gpu --status --watch 1s"},
        {{"--status", "--watch", "50ms"},
         "--watch: invalid interval \"50ms\"",
         "e.g. --watch, --watch 1s, --watch 500ms (at least 100ms)"},
        {{"--status", "--watch", "x"},
         "--watch: invalid interval \"x\"",
         "e.g. --watch, --watch 1s, --watch 500ms (at least 100ms)"},
        {{"--status", "--watch", "--json"},
         "--watch redraws a table; it cannot be combined with --json",
         "for a stream of JSON, run with-gpu --status --json in a loop"},
        {{"--wait", "--status"},
         "--wait is for running a command",
         "--dry-run and --status show the situation now"},
        {{"--timeout", "5", "--dry-run"},
         "--timeout is for running a command",
         "--dry-run and --status show the situation now"},
        {{"--slurm-gres-conf", "--status"},
         "--slurm-gres-conf, --slurm-prolog and --slurm-epilog stand alone",
         "e.g. with-gpu --slurm-gres-conf > gres.conf; see docs/slurm.md"},
        {{"--slurm-prolog", "--slurm-epilog"},
         "--slurm-gres-conf, --slurm-prolog and --slurm-epilog stand alone",
         "e.g. with-gpu --slurm-gres-conf > gres.conf; see docs/slurm.md"},
        {{"--slurm-gres-conf", "x"},
         "--slurm-gres-conf, --slurm-prolog and --slurm-epilog stand alone",
         "e.g. with-gpu --slurm-gres-conf > gres.conf; see docs/slurm.md"},
        {{"--profile", "nope", "x"},
         "unknown profile \"nope\" (from --profile); no profiles are defined",
         "define it as a [profiles.nope] table in ~/.config/with-gpu/config.toml"},
        {{"--require-idle=maybe", "x"},
         "Could not convert: --require-idle = maybe",
         "see with-gpu --help"},
        {{"--count"}, "--count: 1 required N missing", "see with-gpu --help"},
        {{"--min-memory"}, "--min-memory: 1 required SIZE missing", "see with-gpu --help"},
    };
    for (const auto& c : cases) {
        const auto error = error_of(c.args);
        EXPECT_EQ(error.kind, ErrorKind::usage) << ::testing::PrintToString(c.args);
        EXPECT_EQ(error.message, c.message) << ::testing::PrintToString(c.args);
        EXPECT_EQ(error.hint, c.hint) << ::testing::PrintToString(c.args);
    }
}

} // namespace
} // namespace withgpu::cli
