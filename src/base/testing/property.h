// The knobs of the generated (property) tests: FEED_PROPERTY_SEED=<int>
// draws other cases (the default seed gives the same ones every run), and
// FEED_PROPERTY_EXAMPLES=<n> draws more or fewer. A failing test prints the
// seed, so that it can be rerun with it.
#pragma once

#include <cstdint>
#include <cstdlib>

namespace feed::test_support {

inline std::uint64_t property_seed(std::uint64_t fallback = 20261130) {
  const char* s = std::getenv("FEED_PROPERTY_SEED");
  return s && *s ? std::strtoull(s, nullptr, 10) : fallback;
}

inline int property_examples(int fallback) {
  const char* s = std::getenv("FEED_PROPERTY_EXAMPLES");
  return s && *s ? std::atoi(s) : fallback;
}

}  // namespace feed::test_support
