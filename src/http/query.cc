#include "http/query.h"

#include <charconv>

#include <fmt/format.h>

namespace feed::http {

std::optional<std::string> query_param(boost::urls::url_view url, std::string_view name) {
  auto params = url.params();
  auto it = params.find(name);
  if (it == params.end()) return std::nullopt;
  return std::string((*it).value);
}

result<void> given_once(boost::urls::url_view url, std::initializer_list<std::string_view> names) {
  auto params = url.params();
  for (auto name : names)
    if (params.count(name) > 1)
      return error(errc::invalid_input, fmt::format("query parameter '{}' may be given once", name));
  return {};
}

result<std::int64_t> parse_integer(std::string_view text, std::string_view what, std::int64_t min, std::int64_t max) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || v < min || v > max)
    return error(errc::invalid_input, fmt::format("{} must be an integer from {} to {}, got '{}'", what, min, max, text));
  return v;
}

}  // namespace feed::http
