// Latency histogram with log-linear buckets (HdrHistogram-style).
//
// Values are microseconds in [1 us, 60 s]; each power of two is split into 128
// linear sub-buckets, so a reported percentile is within 0.4% of a recorded
// value (bucket midpoint, clamped to the exact min/max). Larger values land in
// the top bucket, which reports the exact max.
//
// Thread-safety: one writer thread per histogram. Readers on other threads
// (the progress line) may call percentile()/count() concurrently and see a
// slightly stale but never torn view, because every counter is a relaxed
// atomic. merge_from() only reads `other`, so it may run while `other`'s
// writer is still active (the result is then a snapshot).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace feed::bot {

class histogram {
 public:
  static constexpr std::uint64_t kMaxValue = 60'000'000;  // 60 s in us
  static constexpr int kSubBits = 7;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr std::size_t kBuckets = 20 * kSub;  // covers values below 2^26 us (> 60 s)

  histogram() = default;
  histogram(const histogram&) = delete;
  histogram& operator=(const histogram&) = delete;

  void record(std::uint64_t micros) noexcept;

  // Adds every count of `other` into this one (single writer on this side).
  void merge_from(const histogram& other) noexcept;
  void reset() noexcept;

  std::uint64_t count() const noexcept { return total_.load(std::memory_order_relaxed); }
  // Both 0 when empty.
  std::uint64_t min() const noexcept;
  std::uint64_t max() const noexcept { return max_.load(std::memory_order_relaxed); }
  double mean() const noexcept;

  // p in [0, 100]; microseconds; 0 when empty.
  double percentile(double p) const noexcept;

  // Bucket arithmetic, exposed for tests.
  static std::size_t bucket_of(std::uint64_t micros) noexcept;
  static std::uint64_t bucket_low(std::size_t index) noexcept;
  static std::uint64_t bucket_width(std::size_t index) noexcept;

 private:
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t by) noexcept {
    // Single writer: load+store avoids a locked instruction per record.
    c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }

  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
  std::atomic<std::uint64_t> total_{0};
  std::atomic<std::uint64_t> sum_{0};
  std::atomic<std::uint64_t> min_{UINT64_MAX};
  std::atomic<std::uint64_t> max_{0};
};

}  // namespace feed::bot
