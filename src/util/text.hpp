// Text that came from another process or user (command lines, user names, claim records,
// queue tickets, names the driver reports) is bytes, not necessarily UTF-8, and may hold
// control characters. These two functions are the only way such text reaches a terminal or a
// JSON document. Pure code.
#pragma once

#include <string>
#include <string_view>

namespace withgpu::text {

// `text` as valid UTF-8: every byte that does not belong to a well-formed sequence (stray
// continuation bytes, truncated or overlong sequences, surrogates, code points above U+10FFFF)
// becomes U+FFFD. Valid text is returned unchanged. For JSON, which must be UTF-8.
[[nodiscard]] std::string valid_utf8(std::string_view text);

// valid_utf8(text) with every control character replaced by '?': C0 (newline, tab, escape,
// bell ...), DEL, C1 (U+0080-U+009F, which some terminals obey like escape sequences) and the
// bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069), which reorder what is
// shown. What is left cannot move the cursor, change colours, set a window title or break a
// line. The one sanitiser for terminal output of foreign text.
[[nodiscard]] std::string printable(std::string_view text);

} // namespace withgpu::text
