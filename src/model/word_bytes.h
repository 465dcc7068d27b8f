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
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// Sixteen bytes at once: bit i of each mask below is about p[i]. With SSE2
// (every x86-64) a block costs about what one word above does, so long
// runs of text are scanned at twice the pace; elsewhere the masks are built
// byte by byte, the same answers at a lower pace.
struct block16 {
#if defined(__SSE2__)
  explicit block16(const void* p) : v(_mm_loadu_si128(static_cast<const __m128i*>(p))) {}
  unsigned equal(unsigned char c) const {
    return static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(static_cast<char>(c)))));
  }
  // Bytes below n (n from 1 to 0x100): min(v, n-1) == v holds exactly there.
  unsigned below(unsigned n) const {
    const __m128i limit = _mm_set1_epi8(static_cast<char>(n - 1));
    return static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, limit), v)));
  }
  unsigned high() const { return static_cast<unsigned>(_mm_movemask_epi8(v)); }
  __m128i v;
#else
  explicit block16(const void* p) { std::memcpy(b, p, 16); }
  template <class Test>
  unsigned mask(Test test) const {
    unsigned m = 0;
    for (int i = 0; i < 16; ++i) m |= unsigned{test(b[i])} << i;
    return m;
  }
  unsigned equal(unsigned char c) const { return mask([c](unsigned char x) { return x == c; }); }
  unsigned below(unsigned n) const { return mask([n](unsigned char x) { return x < n; }); }
  unsigned high() const { return mask([](unsigned char x) { return x >= 0x80; }); }
  unsigned char b[16];
#endif
};

// Bits of a block16 mask below bit n: the bytes before p[n].
constexpr unsigned bits_before(unsigned n) { return (1u << n) - 1; }

}  // namespace feed::word_bytes
