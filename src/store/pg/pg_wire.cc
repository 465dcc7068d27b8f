#include "store/pg/pg_wire.h"

namespace feed::pg_wire {

namespace {

// PostgreSQL's TIMESTAMPTZ epoch, 2000-01-01 UTC, in Unix microseconds.
constexpr std::int64_t pg_epoch_offset_us = 946'684'800'000'000;

void put32(std::string& out, std::uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                     static_cast<char>(v)};
  out.append(b, 4);
}

void put64(std::string& out, std::uint64_t v) {
  put32(out, static_cast<std::uint32_t>(v >> 32));
  put32(out, static_cast<std::uint32_t>(v));
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

array_builder::array_builder(std::uint32_t element_oid, std::size_t reserve_bytes) : oid_(element_oid) {
  elements_.reserve(reserve_bytes);
}

void array_builder::element(std::string_view bytes) {
  put32(elements_, static_cast<std::uint32_t>(bytes.size()));
  elements_.append(bytes);
  ++count_;
}

void array_builder::add_text(std::string_view v) { element(v); }

void array_builder::add_uuid(std::string_view canonical) {
  char bytes[16] = {};
  std::size_t n = 0;
  for (std::size_t i = 0; i + 1 < canonical.size() && n < 16; ++i) {
    const int hi = hex_digit(canonical[i]);
    if (hi < 0) continue;  // a dash
    bytes[n++] = static_cast<char>(hi << 4 | hex_digit(canonical[++i]));
  }
  element(std::string_view(bytes, 16));
}

void array_builder::add_timestamp(timestamp t) {
  std::string b;
  put64(b, static_cast<std::uint64_t>(t.time_since_epoch().count() - pg_epoch_offset_us));
  element(b);
}

void array_builder::add_int8(std::int64_t v) {
  std::string b;
  put64(b, static_cast<std::uint64_t>(v));
  element(b);
}

std::string array_builder::finish() const {
  std::string out;
  out.reserve(20 + elements_.size());
  put32(out, 1);  // dimensions
  put32(out, 0);  // no NULLs
  put32(out, oid_);
  put32(out, static_cast<std::uint32_t>(count_));
  put32(out, 1);  // lower bound
  out += elements_;
  return out;
}

std::optional<std::int64_t> int8_value(std::string_view v) {
  if (v.size() != 8) return std::nullopt;
  std::uint64_t x = 0;
  for (unsigned char c : v) x = (x << 8) | c;
  return static_cast<std::int64_t>(x);
}

std::optional<timestamp> timestamp_value(std::string_view v) {
  auto us = int8_value(v);
  if (!us) return std::nullopt;
  return timestamp(std::chrono::microseconds(*us + pg_epoch_offset_us));
}

std::optional<std::string> uuid_text(std::string_view v) {
  if (v.size() != 16) return std::nullopt;
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    const auto b = static_cast<unsigned char>(v[i]);
    out += hex[b >> 4];
    out += hex[b & 0xf];
  }
  return out;
}

}  // namespace feed::pg_wire
