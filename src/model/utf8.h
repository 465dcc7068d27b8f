// Strict UTF-8 checking (RFC 3629): no overlong forms, no surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF; and the character classes that
// content validation needs.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace feed {

// Number of code points in s, or nullopt when s is not valid UTF-8.
std::optional<std::size_t> utf8_code_points(std::string_view s) noexcept;

// Whether s (valid UTF-8) shows nothing to a reader: every code point is
// White_Space or Default_Ignorable_Code_Point (Unicode 15). True for "".
bool is_blank_to_reader(std::string_view s) noexcept;

// The first control character (Unicode Cc: U+0000..001F, U+007F..009F)
// other than tab and line feed in s, or nullopt. CR is among them (a line
// break is "\n"), and so is U+009B, the one-character form of ESC [ that
// terminals obey like ESC.
std::optional<char32_t> first_forbidden_control(std::string_view s) noexcept;

// Both of the above in one pass over s: the code points (nullopt when s is
// not valid UTF-8) and the first forbidden control before any ill-formed
// byte.
struct text_scan {
  std::optional<std::size_t> code_points;
  std::optional<char32_t> first_control;
};
text_scan scan_text(std::string_view s) noexcept;

}  // namespace feed
