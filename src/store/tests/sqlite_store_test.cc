#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "model/message_id.h"

namespace feed {
namespace {

class SqliteStore : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("feed-store-test-{}-{}", ::getpid(), ::testing::UnitTest::GetInstance()->random_seed() + counter_++);
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<sqlite_store> open() {
    auto s = sqlite_store::open({dir_ / "feed.db", "NORMAL"});
    EXPECT_TRUE(s) << (s ? "" : s.err().message);
    return std::move(*s);
  }

  static message make(std::string user, std::string content) {
    return message{random_message_id(), std::move(user), std::move(content), now_utc(), seq_t{0}};
  }

  std::filesystem::path dir_;
  static inline int counter_ = 0;
};

TEST_F(SqliteStore, AssignsConsecutiveSeqFromOne) {
  auto s = open();
  std::vector<message> batch{make("a", "1"), make("b", "2"), make("a", "3")};
  auto stored = s->insert_batch(batch);
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ((*stored)[i].seq.value(), i + 1);
    EXPECT_EQ((*stored)[i].id, batch[i].id);
  }
  EXPECT_EQ(s->max_seq()->value(), 3);
}

TEST_F(SqliteStore, InsertIsIdempotentById) {
  auto s = open();
  auto m = make("a", "once");
  auto first = s->insert_batch(std::vector{m});
  ASSERT_TRUE(first);
  // Again alone, and twice within one batch next to a new message.
  auto again = s->insert_batch(std::vector{m});
  auto mixed = s->insert_batch(std::vector{m, make("b", "new"), m});
  ASSERT_TRUE(again && mixed);
  EXPECT_EQ(again->at(0).seq.value(), 1);
  ASSERT_EQ(mixed->size(), 3u);
  EXPECT_EQ(s->max_seq()->value(), 2);  // the duplicate consumed no seq
  auto all = s->read({});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 2u);
  EXPECT_EQ(all->at(0).content, "once");
}

// Batches of every size around the multi-row statements' sizes (1, 2, 4,
// ... 64 rows): every message stored once, in batch order, seqs gapless.
TEST_F(SqliteStore, BatchesOfAnySizeAreStoredInOrder) {
  auto s = open();
  std::vector<message> all;
  for (std::size_t n : {1u, 2u, 3u, 7u, 63u, 64u, 65u, 127u, 128u, 129u, 200u, 1000u}) {
    std::vector<message> batch;
    for (std::size_t i = 0; i < n; ++i) batch.push_back(make(fmt::format("u{}", i % 7), fmt::format("{}-{}", n, i)));
    auto stored = s->insert_batch(batch);
    ASSERT_TRUE(stored) << stored.err().message;
    ASSERT_EQ(stored->size(), n);
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_EQ((*stored)[i].seq.value(), static_cast<std::int64_t>(all.size() + 1));
      EXPECT_EQ((*stored)[i].id, batch[i].id);
      EXPECT_EQ((*stored)[i].content, batch[i].content);
      all.push_back((*stored)[i]);
    }
  }
  read_query q;
  q.limit = 100000;
  auto back = s->read(q);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, all);
}

// A stored id anywhere in a large batch, or an id twice in it: the
// duplicates get their first seq, the new messages consecutive seqs after
// the stored ones, in batch order, and nothing is stored twice.
TEST_F(SqliteStore, DuplicatesAnywhereInALargeBatch) {
  auto s = open();
  std::vector<message> first;
  for (int i = 0; i < 10; ++i) first.push_back(make("a", fmt::format("first {}", i)));
  ASSERT_TRUE(s->insert_batch(first));

  std::vector<message> batch;
  for (int i = 0; i < 150; ++i) batch.push_back(make("b", fmt::format("second {}", i)));
  batch[140] = first[7];  // stored already, in the third statement's rows
  batch[100] = batch[3];  // twice in the batch
  auto stored = s->insert_batch(batch);
  ASSERT_TRUE(stored) << stored.err().message;
  ASSERT_EQ(stored->size(), 150u);
  std::int64_t next = 11;
  std::vector<std::int64_t> got;
  for (auto& m : *stored) got.push_back(m.seq.value());
  std::vector<std::int64_t> want;
  for (int i = 0; i < 150; ++i) want.push_back(i == 140 ? 8 : i == 100 ? 0 : next++);
  // The repeat of batch[3] carries batch[3]'s seq; stored is in seq order.
  want[100] = want[3];
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  EXPECT_EQ(s->max_seq()->value(), 10 + 148);
  read_query q;
  q.limit = 1000;
  auto back = s->read(q);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), 158u);
  for (std::size_t i = 0; i < back->size(); ++i) EXPECT_EQ((*back)[i].seq.value(), static_cast<std::int64_t>(i + 1));
  EXPECT_EQ((*back)[7].id, first[7].id);

  // The next batch of new messages follows on without a gap.
  auto after = s->insert_batch(std::vector{make("c", "after")});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->at(0).seq.value(), 159);
}

// Large batches rolled back after their rows went in (a stored id found
// late) leave pages past the end of the database in the writer's cache,
// which the rollback must drop; the database stays whole and holds exactly
// the committed batches, also when read back after a reopen.
TEST_F(SqliteStore, RolledBackBatchesLeaveTheDatabaseWhole) {
  std::vector<message> committed;
  {
    auto s = open();
    for (int round = 0; round < 6; ++round) {
      std::vector<message> batch;
      for (int i = 0; i < 1500; ++i)
        batch.push_back(make(fmt::format("u{}", (round * 1500 + i) % 97), std::string(100 + i % 50, 'a' + round)));
      if (round % 2 == 1) batch.back() = committed[committed.size() / 2];  // stored: the batch is redone row by row
      auto stored = s->insert_batch(batch);
      ASSERT_TRUE(stored) << stored.err().message;
      for (auto& m : *stored)
        if (committed.empty() || m.seq > committed.back().seq) committed.push_back(m);
    }
    read_query q;
    q.limit = 100000;
    auto back = s->read(q);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, committed);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "feed.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)), "ok");
  sqlite3_finalize(q);
  sqlite3_close(db);
  auto s = open();
  read_query all;
  all.limit = 100000;
  auto back = s->read(all);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, committed);
}

TEST_F(SqliteStore, EmptyTextIsStoredAsEmptyText) {
  auto s = open();
  std::vector<message> batch{make("", ""), make("u", "x"), make("", "")};
  auto stored = s->insert_batch(batch);
  ASSERT_TRUE(stored) << stored.err().message;
  auto back = s->read({});
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), 3u);
  EXPECT_EQ(back->at(0).user_id, "");
  EXPECT_EQ(back->at(0).content, "");
}

TEST_F(SqliteStore, SeqIsGaplessUnderConcurrentBatches) {
  auto s = open();
  constexpr int kThreads = 4, kBatches = 25, kPerBatch = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<message> batch;
        for (int i = 0; i < kPerBatch; ++i) batch.push_back(make(fmt::format("u{}", t), fmt::format("{}-{}", b, i)));
        if (!s->insert_batch(batch)) ++failures;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  read_query q;
  q.limit = 100000;
  auto all = s->read(q);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), std::size_t{kThreads * kBatches * kPerBatch});
  std::set<std::string> ids;
  for (std::size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].seq.value(), static_cast<std::int64_t>(i + 1));
    ids.insert((*all)[i].id);
  }
  EXPECT_EQ(ids.size(), all->size());
}

TEST_F(SqliteStore, ReadsByRangeAuthorAndOrder) {
  auto s = open();
  std::vector<message> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(make(i % 2 ? "odd" : "even", std::to_string(i + 1)));
  ASSERT_TRUE(s->insert_batch(batch));

  read_query q;
  q.after = seq_t{3};
  q.up_to = seq_t{7};
  auto r = s->read(q);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ(r->front().seq.value(), 4);
  EXPECT_EQ(r->back().seq.value(), 7);

  read_query newest;
  newest.newest_first = true;
  newest.limit = 3;
  r = s->read(newest);
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ(r->front().seq.value(), 10);

  read_query by_user;
  by_user.user_id = "odd";
  r = s->read(by_user);
  ASSERT_EQ(r->size(), 5u);
  for (auto& m : *r) EXPECT_EQ(m.user_id, "odd");
}

TEST_F(SqliteStore, KeepsContentAndTimeExactly) {
  auto s = open();
  static constexpr char raw[] = "nul \0 quote \" emoji \xF0\x9F\x98\x80 newline \n";
  auto m = make("a", std::string(raw, sizeof raw - 1));
  ASSERT_TRUE(s->insert_batch(std::vector{m}));
  auto r = s->read({});
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(r->at(0).content, m.content);
  EXPECT_EQ(r->at(0).created_at, m.created_at);
}

TEST_F(SqliteStore, SurvivesReopen) {
  {
    auto s = open();
    ASSERT_TRUE(s->insert_batch(std::vector{make("a", "1"), make("a", "2")}));
  }
  auto s = open();
  EXPECT_EQ(s->max_seq()->value(), 2);
  ASSERT_TRUE(s->insert_batch(std::vector{make("a", "3")}));
  EXPECT_EQ(s->max_seq()->value(), 3);
  EXPECT_EQ(*s->schema_version(), 2);
}

TEST_F(SqliteStore, UpgradesAVersionOneDatabaseNumberingRowsByTime) {
  std::filesystem::create_directories(dir_);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "feed.db").c_str(), &db), SQLITE_OK);
  // Laid out as migration 1 leaves it, rows inserted out of time order.
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE messages (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, content TEXT NOT NULL, "
                         "created_at INTEGER NOT NULL);"
                         "CREATE TABLE schema_migrations (version INTEGER NOT NULL, dirty INTEGER NOT NULL);"
                         "INSERT INTO schema_migrations VALUES (1, 0);"
                         "INSERT INTO messages VALUES ('c', 'u', 'third', 3000), ('a', 'u', 'first', 1000),"
                         " ('b', 'u', 'second', 2000);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto s = open();
  ASSERT_TRUE(s);
  auto r = s->read({});
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ(r->at(0).content, "first");
  EXPECT_EQ(r->at(2).content, "third");
  EXPECT_EQ(r->at(2).seq.value(), 3);
  auto next = s->insert_batch(std::vector{make("u", "fourth")});
  EXPECT_EQ(next->at(0).seq.value(), 4);
}

TEST_F(SqliteStore, RefusesADirtySchema) {
  std::filesystem::create_directories(dir_);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "feed.db").c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "CREATE TABLE schema_migrations (version INTEGER NOT NULL, dirty INTEGER NOT NULL);"
                   "INSERT INTO schema_migrations VALUES (1, 1);", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto s = sqlite_store::open({dir_ / "feed.db", "NORMAL"});
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.err().is(errc::storage)) << s.err().message;
  EXPECT_NE(s.err().message.find("dirty"), std::string::npos);

  // No migration ran.
  ASSERT_EQ(sqlite3_open((dir_ / "feed.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name = 'messages'", -1, &q, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(q, 0), 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
}

}  // namespace
}  // namespace feed

namespace feed {
namespace {

TEST_F(SqliteStore, FindsAMessageById) {
  auto s = open();
  auto m = make("a", "findable");
  ASSERT_TRUE(s->insert_batch(std::vector{m}));
  auto found = s->find(m.id);
  ASSERT_TRUE(found) << found.err().message;
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->content, "findable");
  EXPECT_EQ((*found)->user_id, "a");
  EXPECT_EQ((*found)->seq.value(), 1);
  auto missing = s->find(random_message_id());
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->has_value());
  EXPECT_FALSE(s->find("not a uuid")->has_value());
}

// Another process holding the write lock stands in for a disk that cannot
// take writes: reads and pings still work, writes fail.
TEST_F(SqliteStore, WriteStatusKeepsTheLastWriteFailureUntilAWriteSucceeds) {
  auto opened = sqlite_store::open({dir_ / "feed.db", "NORMAL", /*busy_timeout_ms=*/20});
  ASSERT_TRUE(opened);
  auto& s = **opened;
  EXPECT_TRUE(s.write_status(std::chrono::seconds(10)));
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "feed.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_FALSE(s.insert_batch(std::vector{make("a", "blocked")}));
  EXPECT_TRUE(s.ping());
  auto status = s.write_status(std::chrono::seconds(10));
  ASSERT_FALSE(status);
  EXPECT_TRUE(status.err().is(errc::unavailable)) << status.err().message;
  EXPECT_FALSE(s.write_status(std::chrono::seconds(10))) << "a read does not clear it";
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  ASSERT_TRUE(s.insert_batch(std::vector{make("a", "through")}));
  EXPECT_TRUE(s.write_status(std::chrono::seconds(10)));
}

// A write that hangs (here: waiting for another process's lock) is noticed
// before it fails.
TEST_F(SqliteStore, WriteStatusReportsAWriteRunningTooLong) {
  auto opened = sqlite_store::open({dir_ / "feed.db", "NORMAL", /*busy_timeout_ms=*/10000});
  ASSERT_TRUE(opened);
  auto& s = **opened;
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "feed.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::thread writer([&] { EXPECT_TRUE(s.insert_batch(std::vector{make("a", "waits")})); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto status = s.write_status(std::chrono::milliseconds(100));
  EXPECT_FALSE(status);
  if (!status) {
    EXPECT_NE(status.err().message.find("running for"), std::string::npos) << status.err().message;
  }
  EXPECT_TRUE(s.write_status(std::chrono::seconds(10)));
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  writer.join();
  EXPECT_TRUE(s.write_status(std::chrono::milliseconds(0)));
}

}  // namespace
}  // namespace feed
