#include "model/media_type.h"

#include <optional>

#include "base/ascii.h"

namespace feed {

std::string_view trim_ows(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

bool is_json_media_type(std::string_view content_type) {
  const auto type = trim_ows(content_type.substr(0, content_type.find(';')));
  return ascii_iequals(type, "application/json") ||
         (type.size() > 5 && ascii_iequals(type.substr(type.size() - 5), "+json"));
}

namespace {

// A parameter's value starting at `v[i]`, a quoted-string or up to the next
// ';'; `i` ends past it. Nullopt for a quoted string that never closes.
std::optional<std::string> read_value(std::string_view v, std::size_t& i) {
  std::string out;
  if (i < v.size() && v[i] == '"') {
    for (++i; i < v.size(); ++i) {
      if (v[i] == '"') {
        ++i;
        return out;
      }
      if (v[i] == '\\' && i + 1 < v.size()) ++i;  // quoted-pair: the next byte as is
      out.push_back(v[i]);
    }
    return std::nullopt;
  }
  const auto end = std::min(v.find(';', i), v.size());
  out = trim_ows(v.substr(i, end - i));
  i = end;
  return out;
}

}  // namespace

result<std::string> charset_of(std::string_view content_type) {
  const auto v = content_type;
  std::optional<std::string> charset;
  // Each turn starts at a ';' (or the end); the type before the first one
  // holds no quotes.
  for (std::size_t i = v.find(';'); i < v.size();) {
    ++i;
    const auto name_end = std::min(v.find_first_of(";=", i), v.size());
    const auto name = trim_ows(v.substr(i, name_end - i));
    const bool is_charset = ascii_iequals(name, "charset");
    i = name_end;
    if (i == v.size() || v[i] == ';') {  // no '=': an empty parameter, or a name alone
      if (is_charset) return error(errc::invalid_input, "Content-Type names charset without a value");
      continue;
    }
    ++i;  // past '='
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
    const bool quoted = i < v.size() && v[i] == '"';
    auto value = read_value(v, i);
    if (!value) return error(errc::invalid_input, "Content-Type has a quoted parameter value that is not closed");
    if (quoted) {
      while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
      if (i < v.size() && v[i] != ';')
        return error(errc::invalid_input, "Content-Type has text after a quoted parameter value");
    }
    if (is_charset) {
      if (charset) return error(errc::invalid_input, "Content-Type names charset more than once");
      if (value->empty()) return error(errc::invalid_input, "Content-Type names charset without a value");
      charset = std::move(*value);
    }
  }
  return charset.value_or(std::string());
}

}  // namespace feed
