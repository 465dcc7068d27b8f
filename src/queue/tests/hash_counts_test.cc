#include "queue/memory/hash_counts.h"

#include <random>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

#include "base/testing/property.h"

namespace feed {
namespace {

TEST(HashCounts, CountsAddsLessRemoves) {
  hash_counts c(4);
  EXPECT_EQ(c.count(42), 0u);
  c.add(42);
  c.add(42);
  c.add(7);
  EXPECT_EQ(c.count(42), 2u);
  EXPECT_EQ(c.count(7), 1u);
  c.remove(42);
  EXPECT_EQ(c.count(42), 1u);
  c.remove(99);  // absent: nothing happens
  c.remove(42);
  c.remove(42);  // once more than added: still nothing
  EXPECT_EQ(c.count(42), 0u);
  EXPECT_EQ(c.count(7), 1u);
}

// 0 marks an empty slot, so the key 0 is counted with 1.
TEST(HashCounts, ZeroIsCountedWithOne) {
  hash_counts c(4);
  c.add(0);
  EXPECT_EQ(c.count(0), 1u);
  EXPECT_EQ(c.count(1), 1u);
  c.remove(1);
  EXPECT_EQ(c.count(0), 0u);
}

// Random adds and removes over a table kept at its promised fill (at most
// max_keys distinct keys), with keys drawn from a small set so that
// clusters form, wrap around the table's end and are cut by removals
// anywhere in them. After every step each key's count is the model's.
TEST(HashCounts, AgreesWithAMapUnderGeneratedAddsAndRemoves) {
  const auto seed = test_support::property_seed();
  std::mt19937_64 rng(seed);
  for (int example = 0; example < test_support::property_examples(200); ++example) {
    const std::size_t max_keys = 1 + rng() % 40;
    hash_counts table(max_keys);
    std::unordered_map<std::uint64_t, std::uint32_t> model;
    std::vector<std::uint64_t> pool;
    const std::size_t pool_size = max_keys + rng() % (2 * max_keys + 1);
    for (std::size_t i = 0; i < pool_size; ++i) pool.push_back(rng() % 4 == 0 ? i + 2 : rng() | 2);  // small keys too
    for (int step = 0; step < 2000; ++step) {
      const std::uint64_t key = pool[rng() % pool.size()];
      if (rng() % 2 == 0 && (model.contains(key) || model.size() < max_keys)) {
        table.add(key);
        ++model[key];
      } else {
        table.remove(key);
        if (auto it = model.find(key); it != model.end() && --it->second == 0) model.erase(it);
      }
      for (const std::uint64_t k : pool) {
        const std::uint32_t expected = model.contains(k) ? model[k] : 0;
        ASSERT_EQ(table.count(k), expected) << "seed " << seed << " example " << example << " step " << step;
      }
    }
  }
}

}  // namespace
}  // namespace feed
