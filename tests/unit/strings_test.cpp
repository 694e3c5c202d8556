#include "util/strings.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace withgpu::text {
namespace {

TEST(Strings, CaseFoldingChangesAsciiLettersOnly) {
    // Every byte value: only 'A'..'Z' and 'a'..'z' change, so UTF-8 bytes pass untouched.
    for (int value = -128; value < 128; ++value) {
        const auto c = static_cast<char>(value);
        const bool upper = c >= 'A' && c <= 'Z';
        const bool lower = c >= 'a' && c <= 'z';
        EXPECT_EQ(to_lower(c), upper ? static_cast<char>(c + ('a' - 'A')) : c) << value;
        EXPECT_EQ(to_upper(c), lower ? static_cast<char>(c - ('a' - 'A')) : c) << value;
    }
    EXPECT_EQ(to_lower("NVIDIA A100-SXM4-80GB"), "nvidia a100-sxm4-80gb");
    EXPECT_EQ(to_upper("0000:17:00.0 ab"), "0000:17:00.0 AB");
    EXPECT_EQ(to_lower("\xC3\x89T\xC3\x89"), "\xC3\x89t\xC3\x89"); // "ÉTÉ": É stays
    EXPECT_EQ(to_upper(""), "");
}

TEST(Strings, TrimRemovesOuterWhitespaceOnly) {
    EXPECT_EQ(trim("  20 GiB\t\r\n"), "20 GiB");
    EXPECT_EQ(trim("a b"), "a b");
    EXPECT_EQ(trim(" \t\r\n"), "");
    EXPECT_EQ(trim(""), "");
    EXPECT_EQ(trim("\vx\f"), "\vx\f"); // only space, tab, CR and LF count
}

TEST(Strings, IequalsIgnoresCaseButNotLength) {
    EXPECT_TRUE(iequals("GiB", "gib"));
    EXPECT_TRUE(iequals("", ""));
    EXPECT_FALSE(iequals("GiB", "gi"));
    EXPECT_FALSE(iequals("GiB", "MiB"));
}

TEST(Strings, IstartsWith) {
    EXPECT_TRUE(istarts_with("GPU-8a3f", "gpu-"));
    EXPECT_TRUE(istarts_with("GPU-8a3f", ""));
    EXPECT_FALSE(istarts_with("GP", "gpu-"));
    EXPECT_FALSE(istarts_with("MIG-8a3f", "gpu-"));
}

TEST(Strings, Icontains) {
    EXPECT_TRUE(icontains("NVIDIA A100-SXM4-80GB", "a100"));
    EXPECT_TRUE(icontains("NVIDIA A100-SXM4-80GB", "80gb")); // at the very end
    EXPECT_TRUE(icontains("NVIDIA A100-SXM4-80GB", "nvidia"));
    EXPECT_TRUE(icontains("Tesla T4", ""));
    EXPECT_TRUE(icontains("", ""));
    EXPECT_FALSE(icontains("Tesla T4", "V100"));
    EXPECT_FALSE(icontains("T4", "Tesla T4")); // needle longer than the haystack
    EXPECT_FALSE(icontains("", "a"));
}

TEST(Strings, SplitListTrimsAndDropsEmptyItems) {
    EXPECT_EQ(split_list(" 0, 2 ,,GPU-8a3f "), (std::vector<std::string>{"0", "2", "GPU-8a3f"}));
    EXPECT_TRUE(split_list("").empty());
    EXPECT_TRUE(split_list(" , ").empty());
}

TEST(Strings, Join) {
    EXPECT_EQ(join({"a", "b", "c"}, ", "), "a, b, c");
    EXPECT_EQ(join({"a"}, ","), "a");
    EXPECT_EQ(join({}, ","), "");
}

} // namespace
} // namespace withgpu::text
