// The page-cache layer (store/sqlite/page_cache.cc): commits after b-tree
// page swaps no longer reach SQLite's whole-cache walk, and what the
// database holds is unchanged by it, through commits, rollbacks,
// savepoints, deletes and VACUUM (which shrink the file and so do need
// their truncations).
#include "store/sqlite/page_cache.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <random>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/testing/property.h"

namespace feed {
namespace {

namespace fs = std::filesystem;
using sqlite_page_cache::counters;
using sqlite_page_cache::read_counters;

// A database file of its own, with the layer installed before SQLite starts.
class PageCache : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sqlite3_shutdown(), SQLITE_OK);  // no connection is open: the layer can go in
    ASSERT_TRUE(sqlite_page_cache::install());
    dir_ = fs::temp_directory_path() / fmt::format("feed-page-cache-{}-{}", ::getpid(), ++instance_);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ASSERT_EQ(sqlite3_open((dir_ / "t.db").c_str(), &db_), SQLITE_OK);
    // The writer's settings: WAL and a cache large enough that the walk was
    // expensive (16,384 pages of 4 KiB).
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;");
    exec("CREATE TABLE t (k TEXT NOT NULL, v BLOB NOT NULL); CREATE INDEX t_k ON t (k);");
  }
  void TearDown() override {
    if (db_) sqlite3_close(db_);
    fs::remove_all(dir_);
  }

  void exec(const std::string& sql) {
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << sql << ": " << (err ? err : "");
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sql;
    std::string out;
    while (sqlite3_step(s) == SQLITE_ROW) {
      if (!out.empty()) out += '\n';
      out += reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return out;
  }
  std::int64_t number(const std::string& sql) { return std::stoll(text(sql)); }

  // Inserts rows whose keys land all over the index, as (user_id, seq) does.
  void insert_random(std::mt19937_64& rng, int rows, std::map<std::string, int>* model) {
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db_, "INSERT INTO t (k, v) VALUES (?, zeroblob(?))", -1, &s, nullptr), SQLITE_OK);
    for (int i = 0; i < rows; ++i) {
      const auto key = fmt::format("user_{:06}_{:016x}", rng() % 1000, rng());
      const int size = static_cast<int>(rng() % 300);
      sqlite3_bind_text(s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int(s, 2, size);
      ASSERT_EQ(sqlite3_step(s), SQLITE_DONE);
      sqlite3_reset(s);
      if (model) (*model)[key] = size;
    }
    sqlite3_finalize(s);
  }

  // The table as the model would have it: key, blob size.
  std::string contents() { return text("SELECT k || ':' || length(v) FROM t ORDER BY k"); }
  static std::string contents(const std::map<std::string, int>& model) {
    std::string out;
    for (const auto& [k, size] : model) {
      if (!out.empty()) out += '\n';
      out += fmt::format("{}:{}", k, size);
    }
    return out;
  }

  sqlite3* db_ = nullptr;
  fs::path dir_;
  static inline int instance_ = 0;
};

TEST_F(PageCache, CommitsAfterPageSwapsDoNotReachTheCacheWalk) {
  std::mt19937_64 rng(20261130);
  // Enough rows that the index has many leaves, split out of order.
  for (int i = 0; i < 40; ++i) {
    exec("BEGIN");
    insert_random(rng, 200, nullptr);
    exec("COMMIT");
  }
  const counters before = read_counters();
  constexpr int commits = 200;
  for (int i = 0; i < commits; ++i) {
    exec("BEGIN");
    insert_random(rng, 100, nullptr);
    exec("COMMIT");
  }
  const counters after = read_counters();
  // Balancing parked pages at the lock-byte page's number (what made every
  // later commit walk the cache) ...
  EXPECT_GT(after.pages_parked, before.pages_parked);
  // ... and yet no commit had anything to drop: none reached SQLite's cache.
  EXPECT_GE(after.truncates_skipped - before.truncates_skipped, static_cast<std::uint64_t>(commits));
  EXPECT_EQ(after.truncates_forwarded, before.truncates_forwarded);
  EXPECT_EQ(text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(number("SELECT count(*) FROM t"), 40 * 200 + commits * 100);
}

TEST_F(PageCache, RollbackOfAGrownDatabaseDropsItsNewPages) {
  std::mt19937_64 rng(7);
  std::map<std::string, int> model;
  exec("BEGIN");
  insert_random(rng, 2000, &model);
  exec("COMMIT");
  const auto pages = number("PRAGMA page_count");
  const counters before = read_counters();
  exec("BEGIN");
  insert_random(rng, 3000, nullptr);  // grows the file by new pages ...
  exec("ROLLBACK");                   // ... which the cache must forget
  EXPECT_GT(read_counters().truncates_forwarded, before.truncates_forwarded);
  EXPECT_EQ(number("PRAGMA page_count"), pages);
  // New pages reuse the numbers of the dropped ones: stale content would show.
  exec("BEGIN");
  insert_random(rng, 1500, &model);
  exec("COMMIT");
  EXPECT_EQ(contents(), contents(model));
  EXPECT_EQ(text("PRAGMA integrity_check"), "ok");
}

// A generated history of commits, rollbacks, savepoints, deletes and VACUUM,
// checked against a model after every step. FEED_PROPERTY_SEED and
// FEED_PROPERTY_EXAMPLES replay or widen it.
TEST_F(PageCache, ContentsMatchAModelThroughAnyHistory) {
  const std::uint64_t seed = test_support::property_seed(99);
  const int steps = test_support::property_examples(120);
  std::mt19937_64 rng(seed);
  std::map<std::string, int> model;
  for (int step = 0; step < steps; ++step) {
    const auto what = rng() % 10;
    SCOPED_TRACE(fmt::format("seed {} step {} action {}", seed, step, what));
    if (what < 4) {  // a committed batch
      exec("BEGIN");
      insert_random(rng, 1 + static_cast<int>(rng() % 400), &model);
      exec("COMMIT");
    } else if (what < 6) {  // a batch rolled back
      exec("BEGIN");
      insert_random(rng, 1 + static_cast<int>(rng() % 800), nullptr);
      exec("ROLLBACK");
    } else if (what < 7) {  // a savepoint rolled back inside a committed batch
      exec("BEGIN");
      insert_random(rng, 1 + static_cast<int>(rng() % 200), &model);
      exec("SAVEPOINT s");
      insert_random(rng, 1 + static_cast<int>(rng() % 400), nullptr);
      exec("ROLLBACK TO s");
      exec("RELEASE s");
      exec("COMMIT");
    } else if (what < 9) {  // deletes, which free pages
      const auto bound = fmt::format("user_{:06}", rng() % 1000);
      exec(fmt::format("DELETE FROM t WHERE k < '{}'", bound));
      model.erase(model.begin(), model.lower_bound(bound));
    } else {  // VACUUM shrinks the file
      exec("VACUUM");
    }
    ASSERT_EQ(contents(), contents(model));
  }
  EXPECT_EQ(text("PRAGMA integrity_check"), "ok");
}

}  // namespace
}  // namespace feed
