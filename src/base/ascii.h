// ASCII letter case, as HTTP compares tokens (RFC 9110 §5.1, §8.3.1).
//
// Not boost::beast::iequals: Boost 1.81's reads one byte past the end of
// both arguments when they first differ in letter case at their last
// character (found by fuzz/content_type under ASan).
#pragma once

#include <string_view>

namespace feed {

constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

constexpr bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

}  // namespace feed
