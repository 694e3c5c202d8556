// `with-gpu --help`, byte for byte, compared with tests/unit/golden/help.txt (the end-to-end
// test tests/e2e/test_cli.py compares the binary's output with the same file).
//
// After an intended change of the help (a new flag, a new wording), regenerate the file and
// review the diff:
//   WITH_GPU_UPDATE_GOLDEN=1 build/tests/unit/unit_tests --gtest_filter='HelpGolden*'
//   git diff tests/unit/golden/help.txt
#include "cli/options.hpp"
#include "golden.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <sstream>
#include <string>
#include <variant>

namespace withgpu::cli {
namespace {

std::string help_text() {
    auto parsed = parse({"--help"}, {});
    if (!parsed || !std::holds_alternative<Information>(*parsed)) {
        ADD_FAILURE() << "--help did not give Information";
        return {};
    }
    return std::get<Information>(*parsed).text;
}

TEST(HelpGolden, MatchesTheGoldenFile) {
    testing::expect_golden("help.txt", help_text());
}

// What the golden file cannot keep once it is regenerated: the layout rules of the help.
TEST(HelpGolden, ReadsAsOneText) {
    const std::string help = help_text();
    std::size_t usages = 0;
    std::size_t position = 0;
    while ((position = help.find("Usage:", position)) != std::string::npos) {
        ++usages;
        ++position;
    }
    EXPECT_EQ(usages, 1U) << help;
    EXPECT_EQ(help.rfind("Usage: with-gpu ", 0), 0U) << "the help starts with the usage";
    EXPECT_EQ(help.find("\nOptions:\n"), std::string::npos) << "no group of CLI11's own";
    EXPECT_EQ(help.find("\n\n\n"), std::string::npos) << "one blank line between parts";
    EXPECT_NE(help.find("\n  -h,--help "), std::string::npos);
    EXPECT_EQ(help.back(), '\n');
    EXPECT_NE(help.substr(help.size() - 2), "\n\n") << "no blank line at the end";
    std::istringstream lines(help);
    std::string line;
    while (std::getline(lines, line)) {
        EXPECT_LE(line.size(), 80U) << "too wide: " << line;
        EXPECT_TRUE(line.empty() || line.back() != ' ') << "trailing space: '" << line << "'";
    }
}

} // namespace
} // namespace withgpu::cli
