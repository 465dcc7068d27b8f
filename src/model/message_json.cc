#include "model/message_json.h"

#include <array>
#include <bit>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "model/word_bytes.h"

namespace feed {

namespace {

// Per byte: 0 = copied as is, else the escape's second character ('u' for
// \u00XX). boost::json's serializer uses the same table.
constexpr std::array<char, 256> kEscape = [] {
  std::array<char, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 'u';
  t['\b'] = 'b', t['\t'] = 't', t['\n'] = 'n', t['\f'] = 'f', t['\r'] = 'r';
  t['"'] = '"', t['\\'] = '\\';
  return t;
}();

// Extra bytes an escaped byte takes beyond itself.
constexpr std::array<unsigned char, 256> kExtra = [] {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = kEscape[c] == 0 ? 0 : kEscape[c] == 'u' ? 5 : 1;
  return t;
}();

// Strings are scanned eight bytes at a time (word_bytes.h).
using namespace word_bytes;

// Whether any byte of w is escaped: the "any byte zero" and "any byte below
// n" bit tricks, exact for the word as a whole (a borrow can mark a byte
// above a match, but never a word without one) and cheaper than the exact
// per-byte tests, which are used only on words this one flags.
constexpr bool any_escaped(std::uint64_t w) {
  const std::uint64_t quote = w ^ (kOnes * '"'), backslash = w ^ (kOnes * '\\');
  return (((w - kOnes * 0x20) & ~w) | ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash)) & kHighs;
}
constexpr std::uint64_t control_bytes(std::uint64_t w) { return bytes_below(w, 0x20); }
constexpr std::uint64_t quote_bytes(std::uint64_t w) {  // '"' or '\\'
  return bytes_equal(w, '"') | bytes_equal(w, '\\');
}

// Whether any byte of s is escaped; most content has none and is then
// sized and copied whole. From eight bytes on, the last word (or block of
// sixteen) overlaps the one before it instead of a byte-wise tail, where
// short fields (ids, user ids, the envelope's event type) would spend most
// of their scan.
bool has_escapes(std::string_view s) {
  const char* const p = s.data();
  const std::size_t n = s.size();
  if (n < 8) {
    for (std::size_t i = 0; i < n; ++i) {
      const auto c = static_cast<unsigned char>(p[i]);
      if (c < 0x20 || c == '"' || c == '\\') return true;
    }
    return false;
  }
  if (n < 16) return any_escaped(load8(p)) || any_escaped(load8(p + n - 8));
  const auto escaped16 = [](const char* at) {
    const block16 b(at);
    return (b.equal('"') | b.equal('\\') | b.below(0x20)) != 0;
  };
  for (std::size_t i = 0; i + 16 < n; i += 16)
    if (escaped16(p + i)) return true;
  return escaped16(p + n - 16);
}

// The quoted, escaped size of s.
std::size_t string_size(std::string_view s) {
  std::size_t n = s.size() + 2;
  if (!has_escapes(s)) return n;
  const char* p = s.data();
  std::size_t left = s.size();
  for (; left >= 16; p += 16, left -= 16) {
    const block16 b(p);
    const unsigned controls = b.below(0x20);
    if (controls) {  // rare; their escapes are of two lengths
      for (int i = 0; i < 16; ++i) n += kExtra[static_cast<unsigned char>(p[i])];
    } else {
      n += static_cast<std::size_t>(std::popcount(b.equal('"') | b.equal('\\')));
    }
  }
  for (; left >= 8; p += 8, left -= 8) {
    const std::uint64_t w = load8(p);
    if (!any_escaped(w)) continue;
    if (control_bytes(w)) {  // rare; their escapes are of two lengths
      for (int i = 0; i < 8; ++i) n += kExtra[static_cast<unsigned char>(p[i])];
    } else {
      n += marked(quote_bytes(w));
    }
  }
  for (; left > 0; ++p, --left) n += kExtra[static_cast<unsigned char>(*p)];
  return n;
}

// Writes s quoted and escaped; `quoted` is string_size(s), which is its
// size plus the quotes exactly when nothing in it is escaped.
char* write_string(char* p, std::string_view s, std::size_t quoted) {
  *p++ = '"';
  if (quoted == s.size() + 2) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
    *p++ = '"';
    return p;
  }
  const char* run = s.data();  // the first byte not yet written
  const char* q = s.data();
  const char* const end = q + s.size();
  const auto escape = [&](const char* at) {
    std::memcpy(p, run, static_cast<std::size_t>(at - run));
    p += at - run;
    run = at + 1;
    const auto c = static_cast<unsigned char>(*at);
    const char e = kEscape[c];
    *p++ = '\\';
    *p++ = e;
    if (e == 'u') {
      static constexpr char hex[] = "0123456789abcdef";
      *p++ = '0', *p++ = '0', *p++ = hex[c >> 4], *p++ = hex[c & 15];
    }
  };
  for (; end - q >= 16; q += 16) {
    const block16 b(q);
    for (unsigned hits = b.below(0x20) | b.equal('"') | b.equal('\\'); hits; hits &= hits - 1)
      escape(q + std::countr_zero(hits));
  }
  for (; end - q >= 8; q += 8) {
    const std::uint64_t w = load8(q);
    if (!any_escaped(w)) continue;
    for (std::uint64_t hits = control_bytes(w) | quote_bytes(w); hits; hits &= hits - 1)
      escape(q + first_marked(hits));
  }
  for (; q != end; ++q)
    if (kEscape[static_cast<unsigned char>(*q)]) escape(q);
  std::memcpy(p, run, static_cast<std::size_t>(end - run));
  p += end - run;
  *p++ = '"';
  return p;
}

template <std::size_t N>
char* write_literal(char* p, const char (&s)[N]) {
  std::memcpy(p, s, N - 1);
  return p + N - 1;
}

// format_rfc3339 writes four-digit years as "YYYY-MM-DDTHH:MM:SS.ffffffZ";
// those are written here without a temporary string, any other year (a
// corrupt or far-off time) by format_rfc3339 itself.
constexpr std::size_t kTimeSize = 27;
constexpr std::chrono::sys_days kFirstDay = std::chrono::year{0} / 1 / 1;
constexpr std::chrono::sys_days kPastLastDay = std::chrono::year{10000} / 1 / 1;

bool four_digit_year(timestamp t) {
  const auto day = std::chrono::floor<std::chrono::days>(t);
  return day >= kFirstDay && day < kPastLastDay;
}

char* write_digits(char* p, unsigned v, int width) {
  for (int i = width - 1; i >= 0; --i, v /= 10) p[i] = static_cast<char>('0' + v % 10);
  return p + width;
}

char* write_time(char* p, timestamp t) {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const auto in_day = (t - day).count();  // microseconds, [0, 86400e6)
  const auto secs = static_cast<unsigned>(in_day / 1'000'000);
  *p++ = '"';
  p = write_digits(p, static_cast<unsigned>(int(ymd.year())), 4);
  *p++ = '-';
  p = write_digits(p, unsigned(ymd.month()), 2);
  *p++ = '-';
  p = write_digits(p, unsigned(ymd.day()), 2);
  *p++ = 'T';
  p = write_digits(p, secs / 3600, 2);
  *p++ = ':';
  p = write_digits(p, secs / 60 % 60, 2);
  *p++ = ':';
  p = write_digits(p, secs % 60, 2);
  *p++ = '.';
  p = write_digits(p, static_cast<unsigned>(in_day % 1'000'000), 6);
  *p++ = 'Z';
  *p++ = '"';
  return p;
}

std::size_t time_size(timestamp t) {
  return four_digit_year(t) ? kTimeSize + 2 : format_rfc3339(t).size() + 2;
}

char* write_any_time(char* p, timestamp t) {
  if (four_digit_year(t)) return write_time(p, t);
  const auto text = format_rfc3339(t);  // plain ASCII: nothing to escape
  *p++ = '"';
  std::memcpy(p, text.data(), text.size());
  p += text.size();
  *p++ = '"';
  return p;
}

std::size_t int_size(std::int64_t v) {
  char buf[24];
  return static_cast<std::size_t>(std::to_chars(buf, buf + sizeof buf, v).ptr - buf);
}

}  // namespace

json_layout json_layout_of(const message& m, bool with_seq) {
  constexpr std::size_t keys = sizeof R"({"id":,"user_id":,"content":,"created_at":})" - 1;
  json_layout l{string_size(m.id), string_size(m.user_id), string_size(m.content), 0};
  l.size = keys + l.id + l.user_id + l.content + time_size(m.created_at);
  if (with_seq) l.size += sizeof R"(,"seq":)" - 1 + int_size(m.seq.value());
  return l;
}

char* write_json(char* p, const message& m, const json_layout& layout, bool with_seq) {
  p = write_literal(p, R"({"id":)");
  p = write_string(p, m.id, layout.id);
  p = write_literal(p, R"(,"user_id":)");
  p = write_string(p, m.user_id, layout.user_id);
  p = write_literal(p, R"(,"content":)");
  p = write_string(p, m.content, layout.content);
  p = write_literal(p, R"(,"created_at":)");
  p = write_any_time(p, m.created_at);
  if (with_seq) {
    p = write_literal(p, R"(,"seq":)");
    p = std::to_chars(p, p + 24, m.seq.value()).ptr;
  }
  *p++ = '}';
  return p;
}

void append_json(std::string& out, const message& m, bool with_seq) {
  const auto at = out.size();
  const auto layout = json_layout_of(m, with_seq);
  out.resize(at + layout.size);
  write_json(out.data() + at, m, layout, with_seq);
}

void append_json_string(std::string& out, std::string_view s) {
  const auto at = out.size();
  const auto quoted = string_size(s);
  out.resize(at + quoted);
  write_string(out.data() + at, s, quoted);
}

void append_json_time(std::string& out, timestamp t) {
  const auto at = out.size();
  out.resize(at + time_size(t));
  write_any_time(out.data() + at, t);
}

}  // namespace feed
