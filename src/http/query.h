// Query-string and header values as the handlers need them, with errors
// that name the parameter and what was expected.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/url/url_view.hpp>

#include "base/result.h"

namespace feed::http {

// The decoded value of ?name=, or nullopt when absent.
std::optional<std::string> query_param(boost::urls::url_view url, std::string_view name);

// A decimal integer in [min, max]; `what` names it in the error.
result<std::int64_t> parse_integer(std::string_view text, std::string_view what, std::int64_t min, std::int64_t max);

}  // namespace feed::http
