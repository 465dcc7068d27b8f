#include "model/message_id.h"

#include <chrono>
#include <cstdint>
#include <random>

#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

namespace feed {

namespace {

// 64 random bits a call, from a generator seeded from the OS once per thread
// (asking the kernel on every call was a system call per message and per
// envelope). Drawn from the engine directly: Boost's uuid generator went
// through a uniform distribution per 32 bits, most of an id's cost.
std::uint64_t random_bits() {
  thread_local std::mt19937_64 engine = [] {
    std::random_device os;
    std::seed_seq seed{os(), os(), os(), os(), os(), os(), os(), os()};
    return std::mt19937_64(seed);
  }();
  return engine();
}

}  // namespace

void append_uuid7(std::string& out, timestamp now) {
  // UUIDv7 (RFC 9562): the first 48 bits are the Unix time in milliseconds,
  // the other 74 stay random. Ids made close in time are close in the
  // store's primary-key index, so a batch's inserts land on the same few
  // index leaves instead of one random leaf per row: fewer pages written to
  // the WAL per commit (SQLite) and fewer dirty pages (PostgreSQL). Still
  // unique and unguessable; the time they reveal is already created_at.
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  // The 12 bits after the version count up within a millisecond (RFC 9562
  // §6.2, method 1), so that one thread's ids sort in the order it made
  // them: with one event loop, the feed's order. A new millisecond starts
  // the count at a random value below 2048, which leaves room for at least
  // 2048 ids before it would wrap; past that (or if the clock steps back)
  // the count starts afresh and only the order within the millisecond is
  // lost.
  thread_local std::uint64_t last_ms = 0;
  thread_local unsigned counter = 0;
  if (ms == last_ms && counter < 0x0FFF) {
    ++counter;
  } else {
    counter = static_cast<unsigned>(random_bits() & 0x07FF);
    last_ms = ms;
  }
  const std::uint64_t rand_b = random_bits();
  // ms (48) | version 7 (4) | counter (12); variant 0b10 (2) | 62 random bits.
  const std::uint64_t high = (ms << 16) | 0x7000 | counter;
  const std::uint64_t low = (std::uint64_t{0b10} << 62) | (rand_b >> 2);
  static constexpr char hex[] = "0123456789abcdef";
  char text[36];
  std::size_t at = 0;
  const auto put = [&](std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) {
      const auto b = static_cast<unsigned>(v >> (8 * i)) & 0xFF;
      text[at++] = hex[b >> 4];
      text[at++] = hex[b & 0xF];
    }
  };
  // 8-4-4-4-12 hex digits.
  put(high >> 32, 4), text[at++] = '-';
  put(high >> 16, 2), text[at++] = '-';
  put(high, 2), text[at++] = '-';
  put(low >> 48, 2), text[at++] = '-';
  put(low, 6);
  out.append(text, sizeof text);
}

std::string random_message_id() {
  std::string id;
  append_uuid7(id);
  return id;
}

bool is_uuid_text(std::string_view id) noexcept {
  if (id.size() != 36) return false;
  for (std::size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    const bool ok = (i == 8 || i == 13 || i == 18 || i == 23)
                        ? c == '-'
                        : (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!ok) return false;
  }
  return true;
}

std::string message_id_for_key(std::string_view user_id, std::string_view key) {
  // A fixed namespace for this service; changing it would change every
  // derived id and break idempotency across versions.
  static const boost::uuids::uuid ns = boost::uuids::string_generator()("5b0e9d52-63a1-4d8c-9a77-1f2f2c6a8e10");
  boost::uuids::name_generator_sha1 gen(ns);
  std::string name;
  name.reserve(user_id.size() + 1 + key.size());
  name.append(user_id).push_back('\0');
  name.append(key);
  return boost::uuids::to_string(gen(name));
}

}  // namespace feed
