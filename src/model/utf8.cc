#include "model/utf8.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

#include "model/word_bytes.h"

namespace feed {
namespace {

// Decodes the code point at p (in [p, end)) and advances p, or returns
// nullopt when the bytes there are not valid UTF-8.
[[gnu::always_inline]] inline std::optional<char32_t> next_code_point(const unsigned char*& p,
                                                                  const unsigned char* end) noexcept {
  const unsigned char c = *p;
  if (c < 0x80) {
    ++p;
    return c;
  }
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
  return cp;
}

// Calls f(code point) for each code point while f returns true; false when
// s is not valid UTF-8.
template <class F>
bool for_each_code_point(std::string_view s, F&& f) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    auto cp = next_code_point(p, end);
    if (!cp) return false;
    if (!f(*cp)) return true;
  }
  return true;
}

struct range {
  char32_t first, last;
};

// The union of White_Space and Default_Ignorable_Code_Point in Unicode 15.0
// (PropList.txt, DerivedCoreProperties.txt), merged and sorted. Both sets
// are stable across recent versions; a new default-ignorable would at worst
// let a blank post through, as any unassigned code point does.
constexpr std::array<range, 23> invisible_ranges{{
    {0x0009, 0x000D},   {0x0020, 0x0020},   {0x0085, 0x0085},   {0x00A0, 0x00A0},   {0x00AD, 0x00AD},
    {0x034F, 0x034F},   {0x061C, 0x061C},   {0x115F, 0x1160},   {0x1680, 0x1680},   {0x17B4, 0x17B5},
    {0x180B, 0x180F},   {0x2000, 0x200F},   {0x2028, 0x202F},   {0x205F, 0x206F},   {0x3000, 0x3000},
    {0x3164, 0x3164},   {0xFE00, 0xFE0F},   {0xFEFF, 0xFEFF},   {0xFFA0, 0xFFA0},   {0xFFF0, 0xFFF8},
    {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0000, 0xE0FFF},
}};

bool is_invisible(char32_t cp) noexcept {
  auto it = std::lower_bound(invisible_ranges.begin(), invisible_ranges.end(), cp,
                             [](const range& r, char32_t c) { return r.last < c; });
  return it != invisible_ranges.end() && it->first <= cp;
}

}  // namespace

bool is_blank_to_reader(std::string_view s) noexcept {
  bool blank = true;
  for_each_code_point(s, [&](char32_t cp) { return blank = is_invisible(cp); });
  return blank;
}

std::optional<char32_t> first_forbidden_control(std::string_view s) noexcept { return scan_text(s).first_control; }

namespace {

// scan_text, and with Controls false the code points alone (the controls
// are not looked for: utf8_code_points, whose callers check whole bodies).
template <bool Controls>
text_scan scan(std::string_view s) noexcept {
  using namespace word_bytes;
  text_scan out;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* const end = p + s.size();
  std::size_t count = 0;
  const auto note_control = [&](char32_t cp) {
    if (!out.first_control) out.first_control = cp;
  };
  // The character at p, which is not ASCII; false when it is not UTF-8.
  const auto multi_byte = [&] {
    const auto cp = next_code_point(p, end);
    if (!cp) return false;
    ++count;
    if (Controls && *cp <= 0x9F) note_control(*cp);  // U+0080..U+009F: C1 controls
    return true;
  };
  // Sixteen bytes a step, then eight: the ASCII bytes at the front of the
  // block pass at once (a control among them is noted by its mask), then
  // the one multi-byte character after them, if any, is decoded; the next
  // block starts right after it. Text with an accent every few letters thus
  // costs a decode per accent, not per byte.
  while (end - p >= 16) {
    const block16 b(p);
    const unsigned high = b.high();
    const unsigned ascii = high ? static_cast<unsigned>(std::countr_zero(high)) : 16;
    if (ascii) {
      if constexpr (Controls) {
        unsigned controls = (b.below(0x20) & ~(b.equal('\t') | b.equal('\n'))) | b.equal(0x7F);
        if (ascii < 16) controls &= bits_before(ascii);
        if (controls) note_control(p[std::countr_zero(controls)]);
      }
      p += ascii, count += ascii;
      if (ascii == 16) continue;
    }
    if (!multi_byte()) return out;
  }
  while (end - p >= 8) {
    const std::uint64_t w = load8(p);
    const std::uint64_t high = high_bytes(w);
    const unsigned ascii = high ? first_marked(high) : 8;
    if (ascii) {
      if constexpr (Controls) {
        std::uint64_t controls =
            (bytes_below(w, 0x20) & ~(bytes_equal(w, '\t') | bytes_equal(w, '\n'))) | bytes_equal(w, 0x7F);
        if (ascii < 8) controls &= (std::uint64_t{1} << (8 * ascii)) - 1;
        if (controls) note_control(p[first_marked(controls)]);
      }
      p += ascii, count += ascii;
      if (ascii == 8) continue;
    }
    if (!multi_byte()) return out;
  }
  while (p < end) {
    const auto cp = next_code_point(p, end);
    if (!cp) return out;
    ++count;
    if (Controls && ((*cp < 0x20 && *cp != '\t' && *cp != '\n') || (*cp >= 0x7F && *cp <= 0x9F))) note_control(*cp);
  }
  out.code_points = count;
  return out;
}

}  // namespace

text_scan scan_text(std::string_view s) noexcept { return scan<true>(s); }

std::optional<std::size_t> utf8_code_points(std::string_view s) noexcept { return scan<false>(s).code_points; }

}  // namespace feed
