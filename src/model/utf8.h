// Strict UTF-8 checking (RFC 3629): no overlong forms, no surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace feed {

// Number of code points in s, or nullopt when s is not valid UTF-8.
std::optional<std::size_t> utf8_code_points(std::string_view s) noexcept;

}  // namespace feed
