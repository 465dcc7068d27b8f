#include "store/migration.h"

#include <optional>

#include <gtest/gtest.h>

namespace feed::schema {
namespace {

std::vector<migration> three_migrations() {
  return {{1, "000001_a", "A"}, {2, "000002_b", "B"}, {3, "000003_c", "C"}};
}

// Keeps the schema state in memory and records what migrate() asks of it.
class fake_target final : public schema_target {
 public:
  explicit fake_target(schema_state start) : state(start) {}

  std::string_view name() const override { return "fake"; }
  result<schema_state> read_state() override {
    ++reads;
    return state;
  }
  result<void> apply(const migration& m) override {
    if (fail_version == m.version) {
      state = {m.version, true};
      return error(errc::storage, "injected failure");
    }
    applied.push_back(m.version);
    state = {m.version, false};
    return {};
  }
  result<void> finish() override {
    ++finishes;
    if (fail_finish) return error(errc::unavailable, "injected failure");
    return {};
  }

  schema_state state;
  std::optional<std::int64_t> fail_version;
  bool fail_finish = false;
  std::vector<std::int64_t> applied;
  int reads = 0;
  int finishes = 0;
};

TEST(Migrations, SortsFilesByVersion) {
  auto r = collect_migrations({{"000002_b.up.sql", "B"}, {"000001_a.up.sql", "A"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ(r->at(0).version, 1);
  EXPECT_EQ(r->at(0).name, "000001_a");
  EXPECT_EQ(r->at(0).up_sql, "A");
  EXPECT_EQ(r->at(1).version, 2);
  EXPECT_EQ(r->at(1).up_sql, "B");
}

TEST(Migrations, RejectsBadSets) {
  EXPECT_FALSE(collect_migrations({{"create.up.sql", "x"}}));
  EXPECT_FALSE(collect_migrations({{"000001_a.sql", "x"}}));
  EXPECT_FALSE(collect_migrations({{"x00001_a.up.sql", "x"}}));
  // Down migrations are not embedded: nothing here would run them.
  EXPECT_FALSE(collect_migrations({{"000001_a.down.sql", "x"}}));
  EXPECT_FALSE(collect_migrations({{"000001_a.up.sql", "x"}, {"000001_b.up.sql", "y"}}));
}

TEST(Migrations, EmbeddedSqliteSetIsComplete) {
  auto r = collect_migrations(sqlite_migration_files());
  ASSERT_TRUE(r) << r.err().message;
  ASSERT_GE(r->size(), 2u);
  for (std::size_t i = 0; i < r->size(); ++i) {
    EXPECT_EQ(r->at(i).version, static_cast<std::int64_t>(i + 1));
    EXPECT_FALSE(r->at(i).up_sql.empty()) << r->at(i).name;
  }
}

TEST(Migrate, AppliesTheNewerMigrationsInOrderThenFinishes) {
  fake_target t({1, false});
  auto v = migrate(t, three_migrations());
  ASSERT_TRUE(v) << v.err().message;
  EXPECT_EQ(*v, 3);
  EXPECT_EQ(t.applied, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(t.reads, 3) << "the state is read again before every step";
  EXPECT_EQ(t.finishes, 1);
}

TEST(Migrate, AnEmptyDatabaseGetsEverything) {
  fake_target t({});
  auto v = migrate(t, three_migrations());
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, 3);
  EXPECT_EQ(t.applied, (std::vector<std::int64_t>{1, 2, 3}));
}

TEST(Migrate, AnUpToDateDatabaseOnlyFinishes) {
  fake_target t({3, false});
  auto v = migrate(t, three_migrations());
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, 3);
  EXPECT_TRUE(t.applied.empty());
  EXPECT_EQ(t.finishes, 1);
}

TEST(Migrate, RefusesADirtyStateBeforeRunningAnything) {
  for (std::int64_t version : {1, 3}) {
    fake_target t({version, true});
    auto v = migrate(t, three_migrations());
    ASSERT_FALSE(v);
    EXPECT_TRUE(v.err().is(errc::storage)) << v.err().message;
    EXPECT_NE(v.err().message.find("dirty"), std::string::npos) << v.err().message;
    EXPECT_NE(v.err().message.find("fake"), std::string::npos) << v.err().message;
    EXPECT_TRUE(t.applied.empty());
    EXPECT_EQ(t.finishes, 0);
  }
}

TEST(Migrate, StopsAtTheFirstFailedMigration) {
  fake_target t({});
  t.fail_version = 2;
  auto v = migrate(t, three_migrations());
  ASSERT_FALSE(v);
  EXPECT_EQ(v.err().message, "injected failure");
  EXPECT_EQ(t.applied, std::vector<std::int64_t>{1});
  EXPECT_EQ(t.finishes, 0);

  // The failure left the state dirty: the next run refuses it.
  t.fail_version.reset();
  auto again = migrate(t, three_migrations());
  ASSERT_FALSE(again);
  EXPECT_NE(again.err().message.find("dirty"), std::string::npos) << again.err().message;
}

TEST(Migrate, ReportsAFailedFinish) {
  fake_target t({3, false});
  t.fail_finish = true;
  auto v = migrate(t, three_migrations());
  ASSERT_FALSE(v);
  EXPECT_TRUE(v.err().is(errc::unavailable));
}

}  // namespace
}  // namespace feed::schema
