// Tests on eight bytes at once, for the scans of message text (JSON
// escaping, UTF-8 and control checks): most text is plain ASCII with nothing
// to escape or refuse, and a word of it then passes with one test instead of
// eight, which the compiler does not vectorize here on its own.
//
// Each test below sets the high bit of exactly the bytes it is about: no
// carry crosses from one byte into the next, so every marked bit can be
// trusted, not only "some byte matched".
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace feed::word_bytes {

inline constexpr std::uint64_t kOnes = 0x0101010101010101, kLows = 0x7f7f7f7f7f7f7f7f, kHighs = ~kLows;

// Eight bytes from p, p[0] the lowest, so that a marked bit's position
// gives the byte's on any machine.
inline std::uint64_t load8(const void* p) {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
  return w;
}

constexpr std::uint64_t zero_bytes(std::uint64_t w) { return ~(((w & kLows) + kLows) | w | kLows); }

// Bytes equal to c.
constexpr std::uint64_t bytes_equal(std::uint64_t w, unsigned char c) { return zero_bytes(w ^ (kOnes * c)); }

// Bytes below n, for n in 1..0x80.
constexpr std::uint64_t bytes_below(std::uint64_t w, unsigned char n) {
  return ~(((w & kLows) + kOnes * (0x80 - n)) | w | kLows);
}

// Bytes from 0x80 up: the parts of multi-byte UTF-8 sequences.
constexpr std::uint64_t high_bytes(std::uint64_t w) { return w & kHighs; }

// How many bytes a test above marked.
constexpr unsigned marked(std::uint64_t bits) { return static_cast<unsigned>(((bits >> 7) * kOnes) >> 56); }

// The offset of the first marked byte (bits non-zero).
constexpr unsigned first_marked(std::uint64_t bits) { return static_cast<unsigned>(std::countr_zero(bits)) / 8; }

}  // namespace feed::word_bytes
