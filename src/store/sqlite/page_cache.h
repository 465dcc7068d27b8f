// SQLite's own page cache behind a thin layer that spares every commit a
// scan of the whole cache: see the comment at the top of page_cache.cc.
#pragma once

#include <cstdint>

namespace feed::sqlite_page_cache {

// Makes the layer SQLite's page cache, process-wide. SQLite takes this only
// before it initializes (the first open does): false when it refused, and
// SQLite then keeps its plain cache, which is slower but correct.
bool install();

// What the layer did since the process started, for tests.
struct counters {
  std::uint64_t truncates_skipped = 0;    // nothing at or above the limit
  std::uint64_t truncates_forwarded = 0;  // passed to SQLite's cache
  std::uint64_t pages_parked = 0;         // rekeyed above every other page
};
counters read_counters();

}  // namespace feed::sqlite_page_cache
