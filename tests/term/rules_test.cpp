// The printer's decisions, without a terminal.
#include "term/rules.hpp"

#include <gtest/gtest.h>

#include <string>

namespace withgpu::term {
namespace {

TEST(ColorAllowed, UnlessNoColorIsSetOrTheTerminalIsDumb) {
    EXPECT_TRUE(color_allowed(std::nullopt, std::nullopt));
    EXPECT_TRUE(color_allowed(std::string(), std::string("xterm-256color")));
    EXPECT_FALSE(color_allowed(std::string("1"), std::nullopt));
    EXPECT_FALSE(color_allowed(std::string("0"), std::string("xterm"))); // any value counts
    EXPECT_FALSE(color_allowed(std::nullopt, std::string("dumb")));
    EXPECT_TRUE(color_allowed(std::nullopt, std::string("dumber")));
}

TEST(StyleFor, ColoursOnlyOnATerminalAndTheFallbackWidthWhereNoneIsKnown) {
    EXPECT_TRUE(style_for(true, true, 80).color);
    EXPECT_FALSE(style_for(true, false, 80).color);
    EXPECT_FALSE(style_for(false, true, std::nullopt).color);
    EXPECT_EQ(style_for(true, true, 80).width, 80U);
    EXPECT_EQ(style_for(true, true, std::nullopt).width, fallback_width);
    EXPECT_EQ(style_for(false, false, std::nullopt).width, 100U);
}

TEST(FitToRedraw, CutsWithOneColumnSpare) {
    EXPECT_EQ(fit_to_redraw("with-gpu: waiting", 12U), "with-gpu: …");
    EXPECT_EQ(fit_to_redraw("0123456789", 11U), "0123456789");
    EXPECT_EQ(fit_to_redraw("01234567890", 11U), "012345678…");
}

TEST(FitToRedraw, CutsBetweenCharacters) {
    EXPECT_EQ(fit_to_redraw("GPU 0: 71°C, 71°C, 71°C", 13U), "GPU 0: 71°C…");
    EXPECT_EQ(fit_to_redraw("ééééééééééééééé", 12U), "éééééééééé…");
}

TEST(FitToRedraw, LeavesTheLineWholeWhereTheWidthIsUnknownOrImplausible) {
    const std::string line(200, 'x');
    EXPECT_EQ(fit_to_redraw(line, std::nullopt), line);
    EXPECT_EQ(fit_to_redraw(line, 10U), line);
    EXPECT_EQ(fit_to_redraw(line, 0U), line);
    EXPECT_EQ(fit_to_redraw(line, 11U), std::string(9, 'x') + "…");
}

} // namespace
} // namespace withgpu::term
