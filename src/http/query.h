// Query-string and header values as the handlers need them, with errors
// that name the parameter and what was expected.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <boost/url/url_view.hpp>

#include "base/result.h"

namespace feed::http {

// The decoded value of ?name=, or nullopt when absent.
std::optional<std::string> query_param(boost::urls::url_view url, std::string_view name);

// Refuses a request naming one of `names` more than once: which value was
// meant is the client's guess, and proxies and frameworks disagree on it.
result<void> given_once(boost::urls::url_view url, std::initializer_list<std::string_view> names);

// A decimal integer in [min, max]; `what` names it in the error.
result<std::int64_t> parse_integer(std::string_view text, std::string_view what, std::int64_t min, std::int64_t max);

}  // namespace feed::http
