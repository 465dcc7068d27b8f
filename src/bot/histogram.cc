#include "bot/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace feed::bot {

std::size_t histogram::bucket_of(std::uint64_t v) noexcept {
  v = std::min(v, kMaxValue);
  if (v < 2 * kSub) return static_cast<std::size_t>(v);
  const int e = std::bit_width(v) - 1 - kSubBits;  // v >> e is in [128, 256)
  return (static_cast<std::size_t>(e) << kSubBits) + static_cast<std::size_t>(v >> e);
}

std::uint64_t histogram::bucket_low(std::size_t index) noexcept {
  if (index < 2 * kSub) return index;
  const std::size_t e = (index >> kSubBits) - 1;
  return static_cast<std::uint64_t>(index - (e << kSubBits)) << e;
}

std::uint64_t histogram::bucket_width(std::size_t index) noexcept {
  if (index < 2 * kSub) return 1;
  return std::uint64_t{1} << ((index >> kSubBits) - 1);
}

void histogram::record(std::uint64_t micros) noexcept {
  bump(counts_[bucket_of(micros)], 1);
  bump(total_, 1);
  bump(sum_, micros);
  if (micros < min_.load(std::memory_order_relaxed)) min_.store(micros, std::memory_order_relaxed);
  if (micros > max_.load(std::memory_order_relaxed)) max_.store(micros, std::memory_order_relaxed);
}

void histogram::merge_from(const histogram& other) noexcept {
  for (std::size_t i = 0; i < kBuckets; ++i) {
    const auto c = other.counts_[i].load(std::memory_order_relaxed);
    if (c != 0) bump(counts_[i], c);
  }
  bump(total_, other.total_.load(std::memory_order_relaxed));
  bump(sum_, other.sum_.load(std::memory_order_relaxed));
  const auto omin = other.min_.load(std::memory_order_relaxed);
  const auto omax = other.max_.load(std::memory_order_relaxed);
  if (omin < min_.load(std::memory_order_relaxed)) min_.store(omin, std::memory_order_relaxed);
  if (omax > max_.load(std::memory_order_relaxed)) max_.store(omax, std::memory_order_relaxed);
}

void histogram::reset() noexcept {
  for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
  total_.store(0, std::memory_order_relaxed);
  sum_.store(0, std::memory_order_relaxed);
  min_.store(UINT64_MAX, std::memory_order_relaxed);
  max_.store(0, std::memory_order_relaxed);
}

std::uint64_t histogram::min() const noexcept {
  const auto m = min_.load(std::memory_order_relaxed);
  return m == UINT64_MAX ? 0 : m;
}

double histogram::mean() const noexcept {
  const auto n = count();
  return n == 0 ? 0.0 : static_cast<double>(sum_.load(std::memory_order_relaxed)) / static_cast<double>(n);
}

double histogram::percentile(double p) const noexcept {
  // Sum the buckets rather than trusting total_: a concurrent writer may have
  // bumped one before the other.
  std::uint64_t n = 0;
  for (const auto& c : counts_) n += c.load(std::memory_order_relaxed);
  if (n == 0) return 0.0;
  p = std::clamp(p, 0.0, 100.0);
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(n))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i].load(std::memory_order_relaxed);
    if (seen >= rank) {
      // The top bucket also holds everything above kMaxValue: only max is honest there.
      if (i == bucket_of(kMaxValue)) return static_cast<double>(max());
      const double mid = static_cast<double>(bucket_low(i)) + (static_cast<double>(bucket_width(i)) - 1.0) / 2.0;
      return std::clamp(mid, static_cast<double>(min()), static_cast<double>(max()));
    }
  }
  return static_cast<double>(max());
}

}  // namespace feed::bot
