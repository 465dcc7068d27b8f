// Why this layer exists
//
// At the end of every write transaction SQLite's pager drops the cached
// pages beyond the database's size (pager_end_transaction calls
// sqlite3PcacheTruncate). SQLite's default cache (pcache1.c) skips that when
// its largest key so far, iMaxKey, is below the limit; otherwise it walks the
// hash buckets from the limit up to iMaxKey, or all of them, and every page
// they hold, when that span is wider than the table. Only a truncation
// lowers iMaxKey.
//
// B-tree balancing (balance_nonroot in btree.c) puts new sibling pages in
// page-number order by swapping their numbers through a temporary key: the
// lock-byte page, 1 GiB / page size + 1 (262,145 with 4 KiB pages), which
// never holds data. One swap leaves iMaxKey there, so the next commit walks
// the whole table: with the writer's 64 MiB cache, 16,384 buckets and about
// as many pages, 0.5 ms per commit as measured with perf probes on SQLite
// 3.40.1. Inserts into the (user_id, seq) index land all over it and swap in
// nearly every batch, so nearly every commit paid that walk.
//
// This layer keeps, per cache, a bound on the keys the cache holds: the
// largest key fetched or rekeyed to, except that one page rekeyed above the
// bound is "parked" (balancing moves it on to its real number two calls
// later) and tracked on its own. A truncation whose limit lies above both
// has nothing to drop and stops here; any other is passed on and lowers the
// bound. Every other call goes straight to SQLite's cache, so what the cache
// holds and returns is unchanged.
#include "store/sqlite/page_cache.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <new>

namespace feed::sqlite_page_cache {
namespace {

sqlite3_pcache_methods2 inner;  // SQLite's default cache; set by install()

std::atomic<std::uint64_t> skipped{0}, forwarded{0}, parked_pages{0};

struct cache {
  sqlite3_pcache* inner = nullptr;
  // No page of `inner` has a key above `bound`, except `parked` (if set),
  // whose key is `parked_key`.
  unsigned bound = 0;
  sqlite3_pcache_page* parked = nullptr;
  unsigned parked_key = 0;

  unsigned highest() const { return parked ? std::max(bound, parked_key) : bound; }
};

cache* of(sqlite3_pcache* p) { return reinterpret_cast<cache*>(p); }

int init(void*) { return inner.xInit ? inner.xInit(inner.pArg) : SQLITE_OK; }
void shutdown(void*) {
  if (inner.xShutdown) inner.xShutdown(inner.pArg);
}

sqlite3_pcache* create(int page_size, int extra_size, int purgeable) {
  auto* c = new (std::nothrow) cache;
  if (!c) return nullptr;
  c->inner = inner.xCreate(page_size, extra_size, purgeable);
  if (!c->inner) {
    delete c;
    return nullptr;
  }
  return reinterpret_cast<sqlite3_pcache*>(c);
}

void cachesize(sqlite3_pcache* p, int pages) { inner.xCachesize(of(p)->inner, pages); }
int pagecount(sqlite3_pcache* p) { return inner.xPagecount(of(p)->inner); }

sqlite3_pcache_page* fetch(sqlite3_pcache* p, unsigned key, int create_flag) {
  auto* c = of(p);
  auto* page = inner.xFetch(c->inner, key, create_flag);
  if (page && key > c->bound) c->bound = key;
  return page;
}

void unpin(sqlite3_pcache* p, sqlite3_pcache_page* page, int discard) {
  auto* c = of(p);
  if (discard && page == c->parked) c->parked = nullptr;
  inner.xUnpin(c->inner, page, discard);
}

void rekey(sqlite3_pcache* p, sqlite3_pcache_page* page, unsigned old_key, unsigned new_key) {
  auto* c = of(p);
  inner.xRekey(c->inner, page, old_key, new_key);
  if (page == c->parked) c->parked = nullptr;
  if (new_key <= c->bound) return;
  if (!c->parked) {
    c->parked = page;
    c->parked_key = new_key;
    parked_pages.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // A second page above the bound, which balancing never leaves: rare
  // enough to simply raise the bound.
  c->bound = new_key;
}

void truncate(sqlite3_pcache* p, unsigned limit) {
  auto* c = of(p);
  if (limit > c->highest()) {
    skipped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  forwarded.fetch_add(1, std::memory_order_relaxed);
  inner.xTruncate(c->inner, limit);
  // Every page at or above the limit is gone, pinned or not (pcache1).
  if (c->parked && c->parked_key >= limit) c->parked = nullptr;
  c->bound = std::min(c->bound, limit == 0 ? 0 : limit - 1);
}

void destroy(sqlite3_pcache* p) {
  auto* c = of(p);
  inner.xDestroy(c->inner);
  delete c;
}

void shrink(sqlite3_pcache* p) { inner.xShrink(of(p)->inner); }

constexpr sqlite3_pcache_methods2 layer{1,         nullptr,   init,  shutdown, create,   cachesize, pagecount,
                                        fetch,     unpin,     rekey, truncate, destroy,  shrink};

}  // namespace

bool install() {
  static std::mutex mu;
  std::lock_guard lock(mu);
  sqlite3_pcache_methods2 current{};
  if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &current) != SQLITE_OK || !current.xCreate) return false;
  if (current.xCreate == layer.xCreate) return true;  // installed before (SQLite was shut down since)
  inner = current;
  return sqlite3_config(SQLITE_CONFIG_PCACHE2, &layer) == SQLITE_OK;
}

counters read_counters() {
  return {skipped.load(std::memory_order_relaxed), forwarded.load(std::memory_order_relaxed),
          parked_pages.load(std::memory_order_relaxed)};
}

}  // namespace feed::sqlite_page_cache
