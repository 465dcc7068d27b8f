#include "bot/api_list.h"

#include <algorithm>
#include <charconv>

#include "base/ascii.h"

namespace feed::bot {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits "host[:port]" or "[v6][:port]"; port defaults to 80.
bool split_authority(std::string_view s, std::string_view& host, std::string_view& port, std::string& why) {
  host = s;
  port = "80";
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos) {
      why = "unterminated IPv6 address";
      return false;
    }
    host = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') {
        why = "junk after IPv6 address";
        return false;
      }
      port = s.substr(close + 2);
    }
  } else if (const auto colon = s.rfind(':'); colon != std::string_view::npos) {
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  // An empty port is the scheme's default (RFC 3986 §3.2.3).
  if (port.empty()) port = "80";
  if (host.empty()) {
    why = "missing host";
    return false;
  }
  return true;
}

bool valid_port(std::string_view p) {
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  return !p.empty() && ec == std::errc{} && end == p.data() + p.size() && v >= 1 && v <= 65535;
}

}  // namespace

bool parse_api_url(std::string_view url, api_instance& out, std::string& why) {
  std::string_view s = url;
  // Schemes are case-insensitive (RFC 3986 §3.1).
  if (s.size() < 7 || !ascii_iequals(s.substr(0, 7), "http://")) {
    why = "only http:// URLs are supported";
    return false;
  }
  s.remove_prefix(7);
  if (const auto at = s.find_first_of("?#"); at != std::string_view::npos) {
    why = "give no query or fragment in --api";
    return false;
  }
  if (!s.empty() && s.back() == '/') s.remove_suffix(1);
  if (s.find('/') != std::string_view::npos) {
    why = "give paths with --post-path/--feed-path, not in --api";
    return false;
  }
  if (s.find('@') != std::string_view::npos) {
    why = "user information (user@) is not supported in --api";
    return false;
  }
  std::string_view host;
  std::string_view port;
  if (!split_authority(s, host, port, why)) return false;
  if (!valid_port(port)) {
    why = "port must be 1..65535";
    return false;
  }
  out.host = host;
  out.port = port;
  const bool v6 = host.find(':') != std::string_view::npos;
  out.host_header = (v6 ? "[" + out.host + "]" : out.host) + ":" + out.port;
  out.url = "http://" + out.host_header;
  return true;
}

bool parse_api_list(std::string_view list, std::vector<api_instance>& out, std::string& why) {
  out.clear();
  std::size_t from = 0;
  for (;;) {
    const auto comma = list.find(',', from);
    const auto entry = trim(list.substr(from, comma == std::string_view::npos ? std::string_view::npos : comma - from));
    const auto position = out.size() + 1;
    if (entry.empty()) {
      why = "entry " + std::to_string(position) + " is empty";
      return false;
    }
    api_instance inst;
    if (!parse_api_url(entry, inst, why)) {
      why = std::string(entry) + ": " + why;
      return false;
    }
    const bool seen = std::any_of(out.begin(), out.end(),
                                  [&](const api_instance& o) { return o.host_header == inst.host_header; });
    if (seen) {
      why = inst.url + " is listed twice";
      return false;
    }
    out.push_back(std::move(inst));
    if (comma == std::string_view::npos) return true;
    from = comma + 1;
  }
}

}  // namespace feed::bot
