// The binary wire forms, checked byte by byte against the layout of
// PostgreSQL's array_recv/uuid_recv/timestamptz_recv.
#include "store/pg/pg_wire.h"

#include <gtest/gtest.h>

#include <string>

namespace feed::pg_wire {
namespace {

std::string bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s += static_cast<char>(b);
  return s;
}

TEST(pg_wire, text_array_has_header_dimension_and_length_prefixed_elements) {
  array_builder a(oid_text);
  a.add_text("hi");
  a.add_text("");
  const std::string expected = bytes({0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 2, 0, 0, 0, 1,  //
                                      0, 0, 0, 2, 'h', 'i', 0, 0, 0, 0});
  EXPECT_EQ(a.finish(), expected);
  EXPECT_EQ(a.size(), 2u);
}

TEST(pg_wire, text_keeps_any_bytes) {
  array_builder a(oid_text);
  a.add_text("{\"a\",NULL}\\\n\xF0\x9F\x98\x80");
  const std::string out = a.finish();
  EXPECT_EQ(out.substr(24), "{\"a\",NULL}\\\n\xF0\x9F\x98\x80");
}

TEST(pg_wire, uuid_goes_as_sixteen_bytes_and_comes_back) {
  array_builder a(oid_uuid);
  a.add_uuid("0123abcd-4567-89ef-0011-2233445566ff");
  const std::string out = a.finish();
  ASSERT_EQ(out.size(), 20u + 4 + 16);
  EXPECT_EQ(out.substr(20, 4), bytes({0, 0, 0, 16}));
  const std::string raw = out.substr(24);
  EXPECT_EQ(raw, bytes({0x01, 0x23, 0xab, 0xcd, 0x45, 0x67, 0x89, 0xef, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
                        0xff}));
  EXPECT_EQ(uuid_text(raw), "0123abcd-4567-89ef-0011-2233445566ff");
  EXPECT_FALSE(uuid_text("short"));
}

TEST(pg_wire, timestamps_count_microseconds_from_2000) {
  array_builder a(oid_timestamptz);
  const timestamp y2k{std::chrono::seconds(946'684'800)};
  a.add_timestamp(y2k + std::chrono::microseconds(1));
  a.add_timestamp(y2k - std::chrono::microseconds(1));
  const std::string out = a.finish();
  EXPECT_EQ(out.substr(24, 8), bytes({0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(out.substr(36, 8), bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(timestamp_value(out.substr(24, 8)), y2k + std::chrono::microseconds(1));
  EXPECT_EQ(timestamp_value(out.substr(36, 8)), y2k - std::chrono::microseconds(1));
  EXPECT_FALSE(timestamp_value("1234"));
}

TEST(pg_wire, int8_is_big_endian) {
  array_builder a(oid_int8);
  a.add_int8(0x0102030405060708);
  EXPECT_EQ(a.finish().substr(24), bytes({1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(int8_value(bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe})), -2);
}

}  // namespace
}  // namespace feed::pg_wire
