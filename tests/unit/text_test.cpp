#include "util/text.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

namespace withgpu::text {
namespace {

const std::string fffd = "\xEF\xBF\xBD";

TEST(ValidUtf8, ValidTextIsUnchanged) {
    for (const std::string& text : std::initializer_list<std::string>{
             "",
             "python train.py",
             "caf\xC3\xA9",
             // NOLINTNEXTLINE(bugprone-suspicious-missing-comma): split after \xB0
             "71\xC2\xB0"
             "C",
             "\xE2\x96\x88\xE2\x96\x91",
             "\xF0\x9F\x9A\x80 rocket",
             "\xF4\x8F\xBF\xBF",
             std::string("a\0b", 3)}) {
        EXPECT_EQ(valid_utf8(text), text);
    }
}

TEST(ValidUtf8, EveryInvalidByteBecomesOneReplacementCharacter) {
    EXPECT_EQ(valid_utf8("caf\xE9"), "caf" + fffd);                       // Latin-1
    EXPECT_EQ(valid_utf8("\x80"), fffd);                                  // stray continuation
    EXPECT_EQ(valid_utf8("\xC3"), fffd);                                  // truncated at the end
    EXPECT_EQ(valid_utf8("\xE2\x96x"), fffd + fffd + "x");                // truncated in the middle
    EXPECT_EQ(valid_utf8("\xC0\xAF"), fffd + fffd);                       // overlong '/'
    EXPECT_EQ(valid_utf8("\xE0\x80\xAF"), fffd + fffd + fffd);            // overlong, 3 bytes
    EXPECT_EQ(valid_utf8("\xED\xA0\x80"), fffd + fffd + fffd);            // surrogate U+D800
    EXPECT_EQ(valid_utf8("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd); // above U+10FFFF
    EXPECT_EQ(valid_utf8("\xFF\xFE"), fffd + fffd);
}

TEST(Printable, ControlCharactersBecomeQuestionMarks) {
    EXPECT_EQ(printable("sh -c sleep 9 \x1B]0;PWNED\x07\x1B[2J"), "sh -c sleep 9 ?]0;PWNED??[2J");
    EXPECT_EQ(printable("a\nb\rc\td\x7F"), "a?b?c?d?");
    EXPECT_EQ(printable(std::string("nul\0here", 8)), "nul?here");
    // C1 controls (CSI is U+009B) act like ESC [ on some terminals.
    EXPECT_EQ(printable("x\xC2\x9B"
                        "2Jy\xC2\x85z"),
              "x?2Jy?z");
    // Bidirectional overrides would show "claimed by" text in another order.
    EXPECT_EQ(printable("a\xE2\x80\xAE"
                        "b\xE2\x81\xA6"
                        "c"),
              "a?b?c");
}

TEST(Printable, KeepsOrdinaryTextAndReplacesInvalidBytes) {
    EXPECT_EQ(printable("caf\xC3\xA9 71\xC2\xB0"
                        "C \xE2\x80\xA6"),
              "caf\xC3\xA9 71\xC2\xB0"
              "C \xE2\x80\xA6");
    EXPECT_EQ(printable("caf\xE9"), "caf" + fffd);
    // A lone 0x9B byte (CSI in 8-bit terminals) is invalid UTF-8: replaced, never passed on.
    EXPECT_EQ(printable("\x9B"
                        "2J"),
              fffd + "2J");
}

TEST(Printable, IsIdempotent) {
    const std::string once = printable("\x1B[31m caf\xE9 \xC2\x9B x\xE2\x80\xAE");
    EXPECT_EQ(printable(once), once);
    EXPECT_EQ(valid_utf8(once), once);
}

} // namespace
} // namespace withgpu::text
