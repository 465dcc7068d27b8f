// Strong types for ids, so a feed sequence number cannot be passed where a
// count or a byte offset is expected.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace feed {

template <class T, class Tag>
class named_type {
 public:
  using value_type = T;
  constexpr named_type() = default;
  constexpr explicit named_type(T v) : v_(v) {}
  constexpr T value() const noexcept { return v_; }
  constexpr auto operator<=>(const named_type&) const = default;

 private:
  T v_{};
};

// Position of a stored message in the feed: gapless, starting at 1, assigned
// in the same transaction as the message's insert. 0 means "before the first".
using seq_t = named_type<std::int64_t, struct seq_tag>;

}  // namespace feed

template <class T, class Tag>
struct std::hash<feed::named_type<T, Tag>> {
  std::size_t operator()(const feed::named_type<T, Tag>& v) const noexcept {
    return std::hash<T>{}(v.value());
  }
};
