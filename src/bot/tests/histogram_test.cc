#include "bot/histogram.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace feed::bot {
namespace {

double exact_percentile(std::vector<std::uint64_t> v, double p) {
  std::sort(v.begin(), v.end());
  const auto rank = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))));
  return static_cast<double>(v[rank - 1]);
}

TEST(Histogram, EmptyIsZero) {
  const auto h = std::make_unique<histogram>();
  EXPECT_EQ(h->count(), 0u);
  EXPECT_EQ(h->min(), 0u);
  EXPECT_EQ(h->max(), 0u);
  EXPECT_EQ(h->percentile(99), 0.0);
}

TEST(Histogram, BucketsAreContiguousAndWithinOnePercent) {
  for (std::size_t i = 1; i < histogram::bucket_of(histogram::kMaxValue); ++i) {
    ASSERT_EQ(histogram::bucket_low(i), histogram::bucket_low(i - 1) + histogram::bucket_width(i - 1)) << i;
    ASSERT_LE(static_cast<double>(histogram::bucket_width(i)), 0.01 * static_cast<double>(std::max<std::uint64_t>(histogram::bucket_low(i), 100))) << i;
  }
  for (std::uint64_t v : {0ull, 1ull, 255ull, 256ull, 1000ull, 123456ull, 59'999'999ull}) {
    const auto b = histogram::bucket_of(v);
    EXPECT_LE(histogram::bucket_low(b), v);
    EXPECT_LT(v, histogram::bucket_low(b) + histogram::bucket_width(b));
  }
  EXPECT_LT(histogram::bucket_of(histogram::kMaxValue), histogram::kBuckets);
}

TEST(Histogram, PercentilesWithinOnePercentOfExact) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(std::log(2000.0), 1.5);  // a long-tailed latency shape
  std::vector<std::uint64_t> values;
  const auto h = std::make_unique<histogram>();
  for (int i = 0; i < 200000; ++i) {
    const auto v = std::clamp<std::uint64_t>(static_cast<std::uint64_t>(dist(rng)), 1, 59'000'000);
    values.push_back(v);
    h->record(v);
  }
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const double exact = exact_percentile(values, p);
    EXPECT_NEAR(h->percentile(p), exact, exact * 0.01) << "p" << p;
  }
  EXPECT_EQ(h->min(), *std::min_element(values.begin(), values.end()));
  EXPECT_EQ(h->max(), *std::max_element(values.begin(), values.end()));
  EXPECT_EQ(h->percentile(100), static_cast<double>(h->max()));
  EXPECT_EQ(h->count(), values.size());
}

TEST(Histogram, SmallValuesAreExact) {
  const auto h = std::make_unique<histogram>();
  for (std::uint64_t v = 1; v <= 100; ++v) h->record(v);
  EXPECT_EQ(h->percentile(50), 50.0);
  EXPECT_EQ(h->percentile(99), 99.0);
  EXPECT_EQ(h->min(), 1u);
  EXPECT_DOUBLE_EQ(h->mean(), 50.5);
}

TEST(Histogram, HugeValuesClampIntoTopBucketButKeepExactMax) {
  const auto h = std::make_unique<histogram>();
  h->record(10);
  h->record(500'000'000);  // 500 s
  EXPECT_EQ(h->max(), 500'000'000u);
  EXPECT_EQ(h->percentile(100), 500'000'000.0);
  EXPECT_EQ(h->percentile(60), 500'000'000.0);
  EXPECT_EQ(h->percentile(50), 10.0);
}

TEST(Histogram, MergeAddsCountsAndExtremes) {
  const auto a = std::make_unique<histogram>();
  const auto b = std::make_unique<histogram>();
  for (int i = 0; i < 90; ++i) a->record(1000);
  for (int i = 0; i < 10; ++i) b->record(50000);
  b->record(3);
  a->merge_from(*b);
  EXPECT_EQ(a->count(), 101u);
  EXPECT_EQ(a->min(), 3u);
  EXPECT_EQ(a->max(), 50000u);
  EXPECT_NEAR(a->percentile(50), 1000.0, 10.0);
  EXPECT_NEAR(a->percentile(95), 50000.0, 500.0);
  a->reset();
  EXPECT_EQ(a->count(), 0u);
  EXPECT_EQ(a->percentile(50), 0.0);
}

}  // namespace
}  // namespace feed::bot
