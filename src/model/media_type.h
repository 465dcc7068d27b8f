// Reading a Content-Type value (RFC 9110 §8.3): whether it names JSON, and
// its charset parameter. Pure functions of the header text; safe from any
// thread.
#pragma once

#include <string_view>

namespace feed {

// `s` without the optional whitespace (spaces and tabs, RFC 9110 §5.6.3)
// around list elements and parameters.
std::string_view trim_ows(std::string_view s);

// application/json or any structured "+json" type, in any letter case,
// whatever its parameters.
bool is_json_media_type(std::string_view content_type);

// The charset parameter ("" when absent), without its quotes.
std::string_view charset_of(std::string_view content_type);

}  // namespace feed
