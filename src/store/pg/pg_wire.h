// PostgreSQL's binary wire formats, for the few types the store exchanges.
//
// Purpose: send a batch as a handful of binary array parameters and read
// binary results, so neither side formats or parses text per row (timestamps
// and UUIDs especially). These are the formats of the server's *_send and
// *_recv functions, which CockroachDB implements too.
//
// Thread safety: plain values and free functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/time.h"

namespace feed::pg_wire {

// Type OIDs of the array elements we send.
inline constexpr std::uint32_t oid_int8 = 20;
inline constexpr std::uint32_t oid_text = 25;
inline constexpr std::uint32_t oid_timestamptz = 1184;
inline constexpr std::uint32_t oid_uuid = 2950;

// A one-dimensional array without NULLs, element by element.
class array_builder {
 public:
  explicit array_builder(std::uint32_t element_oid, std::size_t reserve_bytes = 0);

  void add_text(std::string_view v);
  // `canonical` is the 36-character lower-case 8-4-4-4-12 form.
  void add_uuid(std::string_view canonical);
  void add_timestamp(timestamp t);
  void add_int8(std::int64_t v);

  std::size_t size() const { return count_; }
  // The array_recv form: header, dimension (count, lower bound 1), elements.
  std::string finish() const;

 private:
  void element(std::string_view bytes);

  std::uint32_t oid_;
  std::size_t count_ = 0;
  std::string elements_;
};

// Big-endian 64-bit integer (INT8, and TIMESTAMPTZ's microseconds).
std::optional<std::int64_t> int8_value(std::string_view v);
// TIMESTAMPTZ: microseconds since 2000-01-01 UTC.
std::optional<timestamp> timestamp_value(std::string_view v);
// UUID: 16 bytes -> the canonical text form.
std::optional<std::string> uuid_text(std::string_view v);

}  // namespace feed::pg_wire
