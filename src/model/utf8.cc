#include "model/utf8.h"

namespace feed {

std::optional<std::size_t> utf8_code_points(std::string_view s) noexcept {
  std::size_t count = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
    } else {
      int len;
      char32_t cp, min;
      if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
      else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
      else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
      else return std::nullopt;
      if (end - p < len) return std::nullopt;
      for (int i = 1; i < len; ++i) {
        if ((p[i] & 0xC0) != 0x80) return std::nullopt;
        cp = (cp << 6) | (p[i] & 0x3F);
      }
      if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
      p += len;
    }
    ++count;
  }
  return count;
}

}  // namespace feed
