#include "model/message_id.h"

#include <chrono>
#include <cstdint>

#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

namespace feed {

void append_uuid7(std::string& out, timestamp now) {
  // A generator seeded from the OS once per thread. (Boost's plain
  // random_generator asks the kernel for entropy on every call: a system call
  // per message and per envelope.)
  thread_local boost::uuids::random_generator_mt19937 gen;
  boost::uuids::uuid u = gen();
  // UUIDv7 (RFC 9562): the first 48 bits are the Unix time in milliseconds,
  // the other 74 stay random. Ids made close in time are close in the
  // store's primary-key index, so a batch's inserts land on the same few
  // index leaves instead of one random leaf per row: fewer pages written to
  // the WAL per commit (SQLite) and fewer dirty pages (PostgreSQL). Still
  // unique and unguessable; the time they reveal is already created_at.
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  for (int i = 0; i < 6; ++i) u.data[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  u.data[6] = static_cast<std::uint8_t>(0x70 | (u.data[6] & 0x0f));  // version 7
  u.data[8] = static_cast<std::uint8_t>(0x80 | (u.data[8] & 0x3f));  // RFC 9562 variant
  char text[36];
  boost::uuids::to_chars(u, text);
  out.append(text, sizeof text);
}

std::string random_message_id() {
  std::string id;
  append_uuid7(id);
  return id;
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
