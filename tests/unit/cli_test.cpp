#include "cli/options.hpp"

#include <gtest/gtest.h>

#include <variant>

namespace withgpu::cli {
namespace {

Result<ParseResult> parse_args(std::vector<std::string> args,
                               std::map<std::string, std::string> env = {}) {
    return parse(args, env);
}

Options options_of(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    auto result = parse_args(std::move(args), std::move(env));
    EXPECT_TRUE(result.has_value()) << (result ? "" : result.error().message);
    return std::get<Options>(*result);
}

Error error_of(std::vector<std::string> args) {
    auto result = parse_args(std::move(args));
    EXPECT_FALSE(result.has_value());
    return result ? Error{} : result.error();
}

TEST(CliTest, CommandAndItsOptionsAreSeparated) {
    auto o = options_of({"-n", "2", "python", "train.py", "-n", "5", "--status"});
    EXPECT_EQ(o.mode, Options::Mode::run);
    EXPECT_EQ(o.request.min_gpus, 2U);
    EXPECT_EQ(o.request.max_gpus, 2U);
    EXPECT_EQ(o.command, (std::vector<std::string>{"python", "train.py", "-n", "5", "--status"}));
}

TEST(CliTest, DoubleDashIsDropped) {
    auto o = options_of({"--", "-weird-name", "x"});
    EXPECT_EQ(o.command, (std::vector<std::string>{"-weird-name", "x"}));
}

TEST(CliTest, DefaultsMatchTheOriginalWithGpu) {
    auto o = options_of({"true"});
    EXPECT_EQ(o.request.min_gpus, 1U);
    EXPECT_EQ(o.request.max_gpus, 1U);
    ASSERT_TRUE(o.request.min_free_bytes.has_value());
    EXPECT_EQ(*o.request.min_free_bytes, 2048ULL * 1024 * 1024);
    EXPECT_EQ(o.lock_dir, "/tmp/with-gpu");
    EXPECT_EQ(o.nvml_library, "");
    EXPECT_FALSE(o.request.require_idle);
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
    EXPECT_EQ(*o.request.min_free_bytes, 20ULL << 30U);
    EXPECT_EQ(*o.request.max_utilization_percent, 10U);
    EXPECT_EQ(*o.request.max_temperature_c, 80U);
    EXPECT_DOUBLE_EQ(*o.request.max_power_w, 250.0);
    EXPECT_TRUE(o.request.require_idle);
    EXPECT_EQ(o.request.only.size(), 2U);
    ASSERT_EQ(o.request.exclude.size(), 1U);
    EXPECT_EQ(o.request.exclude[0].kind, selection::GpuRef::Kind::name_substring);
    EXPECT_EQ(*o.request.gpu_type, "A100");
    EXPECT_TRUE(o.request.strict_type);
}

TEST(CliTest, MinAndMaxGpus) {
    auto o = options_of({"--min-gpus", "2", "true"});
    EXPECT_EQ(o.request.min_gpus, 2U);
    EXPECT_EQ(o.request.max_gpus, 2U); // max defaults to min
    o = options_of({"--max-gpus", "4", "true"});
    EXPECT_EQ(o.request.min_gpus, 1U);
    EXPECT_EQ(o.request.max_gpus, 4U);
    o = options_of({"--min-gpus", "2", "--max-gpus", "4", "true"});
    EXPECT_EQ(o.request.min_gpus, 2U);
    EXPECT_EQ(o.request.max_gpus, 4U);
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
    EXPECT_EQ(o.lock_dir, "/srv/gpu-locks");
    EXPECT_EQ(*o.request.max_utilization_percent, 10U);
    EXPECT_EQ(*o.request.min_free_bytes, 40ULL << 30U);
    EXPECT_EQ(o.request.min_gpus, 2U);
    EXPECT_TRUE(o.wait);
    ASSERT_EQ(o.request.exclude.size(), 1U); // banned GPUs are always excluded
    EXPECT_EQ(o.request.exclude[0].kind, selection::GpuRef::Kind::name_substring);

    // Flags beat the profile; a configured wait does not apply to --status.
    parsed = parse({"--profile", "llm", "-n", "1", "--min-memory", "1G", "true"}, {}, files);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(std::get<Options>(*parsed).request.min_gpus, 1U);
    EXPECT_EQ(*std::get<Options>(*parsed).request.min_free_bytes, 1ULL << 30U);
    parsed = parse({"--profile", "llm", "--status"}, {}, files);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_FALSE(std::get<Options>(*parsed).wait);

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
    EXPECT_EQ(o.lock_dir, "/srv/locks");
    EXPECT_EQ(o.nvml_library, "/opt/libnvidia-ml.so.1");
    EXPECT_EQ(*o.request.max_utilization_percent, 20U);
    o = options_of({"--lock-dir", "/other", "--nvml-library", "x.so", "--max-util", "5", "true"},
                   env);
    EXPECT_EQ(*o.request.max_utilization_percent, 5U);
    EXPECT_EQ(o.lock_dir, "/other");
    EXPECT_EQ(o.nvml_library, "x.so");
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

TEST(CliTest, UsageErrors) {
    const std::vector<std::vector<std::string>> bad{
        {},
        {"--bogus", "x"},
        {"-n", "0", "x"},
        {"-n", "x", "x"},
        {"-n", "2", "--max-gpus", "3", "x"},
        {"--min-gpus", "3", "--max-gpus", "2", "x"},
        {"--min-memory", "lots", "x"},
        {"--max-util", "150", "x"},
        {"--max-temp", "-1", "x"},
        {"--strict", "x"},
        {"--gpu-type", "", "x"},
        {"--json", "x"},
        {"--status", "x"},
        {"--status", "--dry-run"},
        {"--gpu", "name:A100", "x"},
        {"--lock-dir", "", "x"},
    };
    for (const auto& args : bad) {
        auto error = error_of(args);
        EXPECT_EQ(error.kind, ErrorKind::usage) << ::testing::PrintToString(args);
        EXPECT_FALSE(error.message.empty()) << ::testing::PrintToString(args);
    }
}

TEST(CliTest, UnknownOptionSaysWhereTheCommandGoes) {
    auto error = error_of({"--frobnicate", "python"});
    EXPECT_NE(error.message.find("--frobnicate"), std::string::npos);
    EXPECT_NE(error.hint.find("--"), std::string::npos);
}

} // namespace
} // namespace withgpu::cli
