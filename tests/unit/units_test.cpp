#include "util/units.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>

namespace withgpu::units {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr std::uint64_t KiB = 1024ULL;
constexpr std::uint64_t MiB = 1024ULL * KiB;
constexpr std::uint64_t GiB = 1024ULL * MiB;
constexpr std::uint64_t TiB = 1024ULL * GiB;

struct SizeCase {
    std::string text;
    std::uint64_t bytes;
};

// Readable parameter names in test output and in ctest.
void PrintTo(const SizeCase& c, std::ostream* os) {
    *os << '"' << c.text << '"';
}

class ParseSizeValid : public ::testing::TestWithParam<SizeCase> {};

TEST_P(ParseSizeValid, ParsesToBytes) {
    const auto& param = GetParam();
    const auto result = parse_size(param.text);
    ASSERT_TRUE(result.has_value()) << param.text << ": " << result.error().message;
    EXPECT_EQ(*result, param.bytes) << param.text;
}

INSTANTIATE_TEST_SUITE_P(Forms,
                         ParseSizeValid,
                         ::testing::Values(
                             // A bare number is MiB, like the original with-gpu's --min-memory.
                             SizeCase{"2048", 2 * GiB},
                             SizeCase{"1", MiB},
                             SizeCase{"0", 0},
                             SizeCase{"0.5", MiB / 2},
                             SizeCase{".5", MiB / 2},
                             SizeCase{"1.25", MiB + MiB / 4},
                             // Binary units, case-insensitive, "B"/"iB" optional.
                             SizeCase{"4K", 4 * KiB},
                             SizeCase{"4k", 4 * KiB},
                             SizeCase{"4KiB", 4 * KiB},
                             SizeCase{"4kib", 4 * KiB},
                             SizeCase{"512M", 512 * MiB},
                             SizeCase{"512MiB", 512 * MiB},
                             SizeCase{"512mib", 512 * MiB},
                             SizeCase{"20G", 20 * GiB},
                             SizeCase{"20g", 20 * GiB},
                             SizeCase{"20GiB", 20 * GiB},
                             SizeCase{"20GIB", 20 * GiB},
                             SizeCase{"1T", TiB},
                             SizeCase{"1TiB", TiB},
                             SizeCase{"1t", TiB},
                             // Decimal units.
                             SizeCase{"1KB", 1000},
                             SizeCase{"500MB", 500'000'000},
                             SizeCase{"500mb", 500'000'000},
                             SizeCase{"2GB", 2'000'000'000},
                             SizeCase{"2gb", 2'000'000'000},
                             SizeCase{"1TB", 1'000'000'000'000},
                             // Fractions, spaces.
                             SizeCase{"1.5G", GiB + GiB / 2},
                             SizeCase{"1.5T", TiB + TiB / 2},
                             SizeCase{"0.25GiB", GiB / 4},
                             SizeCase{"1.5GB", 1'500'000'000},
                             SizeCase{"20 G", 20 * GiB},
                             SizeCase{"20 GiB", 20 * GiB},
                             SizeCase{"  20G  ", 20 * GiB},
                             SizeCase{"020G", 20 * GiB},
                             // The largest sizes that still fit.
                             SizeCase{"16777215T", 16777215ULL * TiB},
                             SizeCase{"18014398509481983K", 18014398509481983ULL * KiB}));

TEST(ParseSize, FractionRoundsToNearestByte) {
    // 0.1 GiB = 107374182.4 bytes.
    EXPECT_EQ(parse_size("0.1G").value(), 107374182U);
    EXPECT_EQ(parse_size("0.0000000001K").value(), 0U);
}

struct BadCase {
    std::string text;
    std::string message_part;
};

void PrintTo(const BadCase& c, std::ostream* os) {
    *os << '"' << c.text << '"';
}

class ParseSizeInvalid : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParseSizeInvalid, IsUsageErrorWithHint) {
    const auto& param = GetParam();
    const auto result = parse_size(param.text);
    ASSERT_FALSE(result.has_value()) << param.text << " parsed as " << *result;
    EXPECT_EQ(result.error().kind, ErrorKind::usage);
    EXPECT_THAT(result.error().message, HasSubstr("invalid size \"" + param.text + "\""));
    EXPECT_THAT(result.error().message, HasSubstr(param.message_part));
    EXPECT_THAT(result.error().hint, HasSubstr("2048 (MiB), 20G, 20GiB, 500MB, 1.5T"));
}

INSTANTIATE_TEST_SUITE_P(
    Errors,
    ParseSizeInvalid,
    ::testing::Values(BadCase{"20Q", "expected a number with an optional unit"},
                      BadCase{"", "expected a number with an optional unit"},
                      BadCase{"   ", "expected a number with an optional unit"},
                      BadCase{"G", "expected a number with an optional unit"},
                      BadCase{"GiB", "expected a number with an optional unit"},
                      BadCase{"abc", "expected a number with an optional unit"},
                      BadCase{"1.", "expected a number with an optional unit"},
                      BadCase{".", "expected a number with an optional unit"},
                      BadCase{"1..5G", "expected a number with an optional unit"},
                      BadCase{"1.5.2G", "expected a number with an optional unit"},
                      BadCase{"20GG", "expected a number with an optional unit"},
                      BadCase{"20 G B", "expected a number with an optional unit"},
                      BadCase{"20Gi", "expected a number with an optional unit"},
                      BadCase{"20B", "expected a number with an optional unit"},
                      BadCase{"1e3", "expected a number with an optional unit"},
                      BadCase{"+5", "expected a number with an optional unit"},
                      BadCase{"0x10", "expected a number with an optional unit"},
                      BadCase{"1,5G", "expected a number with an optional unit"},
                      BadCase{"-x", "expected a number with an optional unit"},
                      BadCase{"-1", "must not be negative"},
                      BadCase{"-1G", "must not be negative"},
                      BadCase{"-0.5T", "must not be negative"},
                      BadCase{"16777216T", "too large"},
                      BadCase{"17592186044416", "too large"},
                      BadCase{"99999999999999999999999", "too large"},
                      BadCase{"18446744073709551615.9KB", "too large"}));

TEST(ParseSize, UnknownUnitIsNamed) {
    const auto result = parse_size("20Q");
    ASSERT_FALSE(result.has_value());
    EXPECT_THAT(result.error().message,
                HasSubstr("invalid size \"20Q\": expected a number with an optional unit"));
    EXPECT_THAT(result.error().message, HasSubstr("\"Q\""));
}

struct DurationCase {
    std::string text;
    std::chrono::milliseconds value;
};

void PrintTo(const DurationCase& c, std::ostream* os) {
    *os << '"' << c.text << '"';
}

class ParseDurationValid : public ::testing::TestWithParam<DurationCase> {};

TEST_P(ParseDurationValid, Parses) {
    const auto& param = GetParam();
    const auto result = parse_duration(param.text);
    ASSERT_TRUE(result.has_value()) << param.text << ": " << result.error().message;
    EXPECT_EQ(result->count(), param.value.count()) << param.text;
}

INSTANTIATE_TEST_SUITE_P(Forms,
                         ParseDurationValid,
                         ::testing::Values(DurationCase{"90", 90s},
                                           DurationCase{"0", 0ms},
                                           DurationCase{"1.5", 1500ms},
                                           DurationCase{"250ms", 250ms},
                                           DurationCase{"250 ms", 250ms},
                                           DurationCase{"250MS", 250ms},
                                           DurationCase{"30s", 30s},
                                           DurationCase{"30S", 30s},
                                           DurationCase{"0.5s", 500ms},
                                           DurationCase{"5m", 5min},
                                           DurationCase{"5M", 5min},
                                           DurationCase{"2h", 2h},
                                           DurationCase{"1.5h", 90min},
                                           DurationCase{"0.0005s", 1ms},
                                           // Not zero stays not zero: at least 1ms.
                                           DurationCase{"0.0001s", 1ms},
                                           DurationCase{"0.1ms", 1ms},
                                           DurationCase{"0.000ms", 0ms},
                                           DurationCase{" 10s ", 10s},
                                           DurationCase{"2562047788015h", 2562047788015h}));

class ParseDurationInvalid : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParseDurationInvalid, IsUsageErrorWithHint) {
    const auto& param = GetParam();
    const auto result = parse_duration(param.text);
    ASSERT_FALSE(result.has_value()) << param.text << " parsed as " << result->count() << "ms";
    EXPECT_EQ(result.error().kind, ErrorKind::usage);
    EXPECT_THAT(result.error().message, HasSubstr("invalid duration \"" + param.text + "\""));
    EXPECT_THAT(result.error().message, HasSubstr(param.message_part));
    EXPECT_THAT(result.error().hint, HasSubstr("30s, 5m, 1.5h"));
}

INSTANTIATE_TEST_SUITE_P(Errors,
                         ParseDurationInvalid,
                         ::testing::Values(BadCase{"", "expected a number"},
                                           BadCase{"abc", "expected a number"},
                                           BadCase{"5x", "expected a number"},
                                           BadCase{"5d", "expected a number"},
                                           BadCase{"5sec", "expected a number"},
                                           BadCase{"s", "expected a number"},
                                           BadCase{"1.", "expected a number"},
                                           BadCase{"5m30s", "expected a number"},
                                           BadCase{"-1", "must not be negative"},
                                           BadCase{"-5s", "must not be negative"},
                                           BadCase{"2562047788016h", "too large"},
                                           BadCase{"99999999999999999999", "too large"}));

TEST(ParseUnsigned, AcceptsDigits) {
    EXPECT_EQ(parse_unsigned("0", "--max-util").value(), 0U);
    EXPECT_EQ(parse_unsigned("42", "--max-util").value(), 42U);
    EXPECT_EQ(parse_unsigned("007", "-n").value(), 7U);
    EXPECT_EQ(parse_unsigned("4294967295", "-n").value(), std::numeric_limits<unsigned>::max());
}

TEST(ParseUnsigned, RejectsAnythingButDigits) {
    for (const std::string text : {"", " ", "-1", "+1", "1.5", "abc", "10%", "1e3", "0x1", "1 2"}) {
        const auto result = parse_unsigned(text, "--max-util");
        ASSERT_FALSE(result.has_value()) << text;
        EXPECT_EQ(result.error().kind, ErrorKind::usage) << text;
        EXPECT_THAT(result.error().message, HasSubstr("--max-util")) << text;
        EXPECT_THAT(result.error().message, HasSubstr("\"" + text + "\"")) << text;
        EXPECT_THAT(result.error().message, HasSubstr("whole number")) << text;
    }
}

TEST(ParseUnsigned, RejectsOverflow) {
    const auto result = parse_unsigned("4294967296", "-n");
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().kind, ErrorKind::usage);
    EXPECT_THAT(result.error().message, HasSubstr("-n"));
    EXPECT_THAT(result.error().message, HasSubstr("too large"));
}

struct FormatSizeCase {
    std::uint64_t bytes;
    std::string text;
};

void PrintTo(const FormatSizeCase& c, std::ostream* os) {
    *os << c.bytes;
}

class FormatSize : public ::testing::TestWithParam<FormatSizeCase> {};

TEST_P(FormatSize, Formats) {
    EXPECT_EQ(format_size(GetParam().bytes), GetParam().text);
}

INSTANTIATE_TEST_SUITE_P(
    Values,
    FormatSize,
    ::testing::Values(
        FormatSizeCase{0, "0 B"},
        FormatSizeCase{1, "1 B"},
        FormatSizeCase{800, "800 B"},
        FormatSizeCase{1023, "1023 B"},
        FormatSizeCase{1024, "1 KiB"},
        FormatSizeCase{1536, "1.5 KiB"},
        FormatSizeCase{800 * KiB, "800 KiB"},
        FormatSizeCase{512 * MiB, "512 MiB"},
        FormatSizeCase{GiB, "1 GiB"},
        FormatSizeCase{GiB + GiB / 2, "1.5 GiB"},
        FormatSizeCase{static_cast<std::uint64_t>(3.1 * static_cast<double>(GiB)), "3.1 GiB"},
        FormatSizeCase{static_cast<std::uint64_t>(3.14 * static_cast<double>(GiB)), "3.1 GiB"},
        FormatSizeCase{static_cast<std::uint64_t>(9.94 * static_cast<double>(GiB)), "9.9 GiB"},
        // Rounding up to 10 drops the decimal.
        FormatSizeCase{static_cast<std::uint64_t>(9.96 * static_cast<double>(GiB)), "10 GiB"},
        FormatSizeCase{10 * GiB, "10 GiB"},
        FormatSizeCase{static_cast<std::uint64_t>(10.4 * static_cast<double>(GiB)), "10 GiB"},
        FormatSizeCase{20 * GiB, "20 GiB"},
        FormatSizeCase{80 * GiB, "80 GiB"},
        FormatSizeCase{81559 * MiB, "80 GiB"}, // H100 80GB as NVML reports it
        FormatSizeCase{static_cast<std::uint64_t>(1.04 * static_cast<double>(GiB)), "1 GiB"},
        // Rounding carries into the next unit.
        FormatSizeCase{1023 * MiB + 700 * KiB, "1 GiB"},
        FormatSizeCase{TiB, "1 TiB"},
        FormatSizeCase{std::numeric_limits<std::uint64_t>::max(), "16 EiB"}));

struct FormatDurationCase {
    std::int64_t seconds;
    std::string text;
};

void PrintTo(const FormatDurationCase& c, std::ostream* os) {
    *os << c.seconds << 's';
}

class FormatDuration : public ::testing::TestWithParam<FormatDurationCase> {};

TEST_P(FormatDuration, Formats) {
    EXPECT_EQ(format_duration(std::chrono::seconds(GetParam().seconds)), GetParam().text);
}

INSTANTIATE_TEST_SUITE_P(Values,
                         FormatDuration,
                         ::testing::Values(FormatDurationCase{0, "0s"},
                                           FormatDurationCase{45, "45s"},
                                           FormatDurationCase{59, "59s"},
                                           FormatDurationCase{60, "1m00s"},
                                           FormatDurationCase{125, "2m05s"},
                                           FormatDurationCase{3599, "59m59s"},
                                           FormatDurationCase{3600, "1h00m"},
                                           FormatDurationCase{2 * 3600 + 13 * 60 + 59, "2h13m"},
                                           FormatDurationCase{86399, "23h59m"},
                                           FormatDurationCase{86400, "1d00h"},
                                           FormatDurationCase{3 * 86400 + 4 * 3600 + 59, "3d04h"},
                                           FormatDurationCase{std::int64_t{400} * 86400, "400d00h"},
                                           FormatDurationCase{-5, "0s"}));

} // namespace
} // namespace withgpu::units
