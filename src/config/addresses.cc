#include "config/addresses.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cctype>
#include <charconv>
#include <cstdint>

#include <fmt/format.h>

#include "base/ascii.h"

namespace feed {
namespace {

bool is_ipv6(const std::string& text) {
  in6_addr a{};
  return ::inet_pton(AF_INET6, text.c_str(), &a) == 1;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A DNS name or IPv4 address: letters, digits, '.', '-', '_'.
bool is_plain_host(std::string_view h) {
  if (h.empty()) return false;
  for (const char c : h)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) return false;
  return true;
}

std::string port_problem(std::string_view port) {
  std::uint32_t v = 0;
  const auto [at, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (port.empty() || ec != std::errc{} || at != port.data() + port.size() || v < 1 || v > 65535)
    return fmt::format("port '{}' is not a whole number from 1 to 65535", port);
  return {};
}

std::string entry_problem(std::string_view entry) {
  if (const auto scheme = entry.find("://"); scheme != std::string_view::npos) {
    const auto proto = entry.substr(0, scheme);
    bool known = false;
    for (const std::string_view p : {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}) known = known || ascii_iequals(proto, p);
    if (!known) return fmt::format("'{}': unknown protocol '{}'", entry, proto);
    entry.remove_prefix(scheme + 3);
  }
  std::string_view host = entry;
  std::string_view port;
  if (entry.starts_with('[')) {
    const auto close = entry.find(']');
    if (close == std::string_view::npos || !is_ipv6(std::string(entry.substr(1, close - 1))))
      return fmt::format("'{}': not a bracketed IPv6 address", entry);
    host = entry.substr(0, close + 1);
    const auto rest = entry.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':')) return fmt::format("'{}': expected ':port' after ']'", entry);
      port = rest.substr(1);
      if (auto p = port_problem(port); !p.empty()) return fmt::format("'{}': {}", entry, p);
    }
    return {};
  }
  if (const auto colon = entry.rfind(':'); colon != std::string_view::npos) {
    host = entry.substr(0, colon);
    port = entry.substr(colon + 1);
    if (auto p = port_problem(port); !p.empty()) return fmt::format("'{}': {}", entry, p);
  }
  if (!is_plain_host(host)) {
    if (host.find(':') != std::string_view::npos)
      return fmt::format("'{}': more than one ':' (an IPv6 address goes in brackets: [::1]:9092)", entry);
    return fmt::format("'{}': '{}' is not a host name or address", entry, host);
  }
  return {};
}

}  // namespace

std::string broker_list_problem(std::string_view brokers) {
  if (trim(brokers).empty()) return "empty: give host:port[,...]";
  std::size_t start = 0;
  while (true) {
    const auto comma = brokers.find(',', start);
    const auto entry = trim(brokers.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (entry.empty()) return fmt::format("'{}' has an empty entry", brokers);
    if (auto p = entry_problem(entry); !p.empty()) return p;
    if (comma == std::string_view::npos) return {};
    start = comma + 1;
  }
}

std::string listen_address(const std::string& host, std::string& problem) {
  problem.clear();
  in_addr a4{};
  if (::inet_pton(AF_INET, host.c_str(), &a4) == 1 || is_ipv6(host)) return host;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0 || found == nullptr) {
    problem = fmt::format("'{}' is neither an IP address nor a host name that resolves ({})", host,
                          rc != 0 ? ::gai_strerror(rc) : "no address");
    return {};
  }
  const addrinfo* pick = found;
  for (const addrinfo* ai = found; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET) {
      pick = ai;
      break;
    }
  char text[INET6_ADDRSTRLEN] = {};
  const void* addr = pick->ai_family == AF_INET
                         ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(pick->ai_addr)->sin_addr)
                         : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(pick->ai_addr)->sin6_addr);
  ::inet_ntop(pick->ai_family, addr, text, sizeof text);
  ::freeaddrinfo(found);
  return text;
}

std::string host_for_port(const std::string& host, std::string& problem) {
  problem.clear();
  if (is_ipv6(host)) return "[" + host + "]";
  if (host.starts_with('[') && host.ends_with(']') && is_ipv6(host.substr(1, host.size() - 2))) return host;
  if (host.find(':') != std::string::npos) {
    problem = fmt::format("'{}' holds a port", host);
    return {};
  }
  if (!is_plain_host(host)) problem = fmt::format("'{}' is not a host name or address", host);
  return host;
}

}  // namespace feed
