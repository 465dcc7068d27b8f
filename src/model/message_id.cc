#include "model/message_id.h"

#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

namespace feed {

std::string random_message_id() {
  // A generator seeded from the OS once per thread. (Boost's plain
  // random_generator asks the kernel for entropy on every call: a system call
  // per message and per envelope.)
  thread_local boost::uuids::random_generator_mt19937 gen;
  return boost::uuids::to_string(gen());
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
