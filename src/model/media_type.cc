#include "model/media_type.h"

#include <boost/beast/core/string.hpp>

namespace feed {

using boost::beast::iequals;

std::string_view trim_ows(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

bool is_json_media_type(std::string_view content_type) {
  const auto type = trim_ows(content_type.substr(0, content_type.find(';')));
  return iequals(type, "application/json") || (type.size() > 5 && iequals(type.substr(type.size() - 5), "+json"));
}

std::string_view charset_of(std::string_view content_type) {
  for (auto p = content_type.find(';'); p != std::string_view::npos;) {
    const auto next = content_type.find(';', p + 1);
    const auto param =
        content_type.substr(p + 1, next == std::string_view::npos ? std::string_view::npos : next - p - 1);
    const auto eq = param.find('=');
    if (eq != std::string_view::npos && iequals(trim_ows(param.substr(0, eq)), "charset")) {
      auto value = trim_ows(param.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      return value;
    }
    p = next;
  }
  return {};
}

}  // namespace feed
