// Reading a Content-Type value (RFC 9110 §8.3): whether it names JSON, and
// its charset parameter. Pure functions of the header text; safe from any
// thread.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace feed {

// `s` without the optional whitespace (spaces and tabs, RFC 9110 §5.6.3)
// around list elements and parameters.
std::string_view trim_ows(std::string_view s);

// application/json or any structured "+json" type, in any letter case,
// whatever its parameters.
bool is_json_media_type(std::string_view content_type);

// The charset parameter ("" when absent), read as RFC 9110 §5.6.6 reads
// parameters: a quoted value may hold ';' and backslash escapes, and is
// returned without its quotes and escapes. An error when charset is named
// twice or without a value, when a quoted value is not closed or is
// followed by more than whitespace: readers could then disagree on the
// charset (this one and a proxy, or two proxies), as with a header sent
// twice. Other parameters without a value are skipped.
result<std::string> charset_of(std::string_view content_type);

}  // namespace feed
