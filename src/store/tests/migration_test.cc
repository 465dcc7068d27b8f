#include "store/migration.h"

#include <gtest/gtest.h>

namespace feed::schema {
namespace {

TEST(Migrations, PairsAndSortsFiles) {
  auto r = collect_migrations({{"000002_b.up.sql", "B"}, {"000001_a.down.sql", "a-"}, {"000001_a.up.sql", "A"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ(r->at(0).version, 1);
  EXPECT_EQ(r->at(0).name, "000001_a");
  EXPECT_EQ(r->at(0).up_sql, "A");
  EXPECT_EQ(r->at(0).down_sql, "a-");
  EXPECT_EQ(r->at(1).version, 2);
}

TEST(Migrations, RejectsBadSets) {
  EXPECT_FALSE(collect_migrations({{"create.up.sql", "x"}}));
  EXPECT_FALSE(collect_migrations({{"000001_a.sql", "x"}}));
  EXPECT_FALSE(collect_migrations({{"000001_a.down.sql", "x"}}));
  EXPECT_FALSE(collect_migrations({{"000001_a.up.sql", "x"}, {"000001_b.up.sql", "y"}}));
}

TEST(Migrations, EmbeddedSqliteSetIsComplete) {
  auto r = collect_migrations(sqlite_migration_files());
  ASSERT_TRUE(r);
  ASSERT_GE(r->size(), 2u);
  for (std::size_t i = 0; i < r->size(); ++i) {
    EXPECT_EQ(r->at(i).version, static_cast<std::int64_t>(i + 1));
    EXPECT_FALSE(r->at(i).down_sql.empty()) << r->at(i).name;
  }
}

}  // namespace
}  // namespace feed::schema
