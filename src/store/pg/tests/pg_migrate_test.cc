// split_sql_statements needs no server.
#include "store/pg/pg_migrate.h"

#include <gtest/gtest.h>

namespace feed {
namespace {

using statements = std::vector<std::string>;

TEST(split_sql_statements, respects_quotes_and_comments) {
  const auto s = split_sql_statements(
      "-- leading comment; not a statement\n"
      "CREATE TABLE a (x TEXT DEFAULT 'a;b''c');\n"
      "/* block; /* nested; */ still */ INSERT INTO \"we;ird\" VALUES (E'\\';x');\n"
      "SELECT $$ ; $$, $tag$ ; $tag$, $1;\n"
      "  ;  -- trailing\n");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0], "-- leading comment; not a statement\nCREATE TABLE a (x TEXT DEFAULT 'a;b''c')");
  EXPECT_EQ(s[1], "/* block; /* nested; */ still */ INSERT INTO \"we;ird\" VALUES (E'\\';x')");
  EXPECT_EQ(s[2], "SELECT $$ ; $$, $tag$ ; $tag$, $1");
}

TEST(split_sql_statements, splits_at_top_level_semicolons_and_trims) {
  EXPECT_EQ(split_sql_statements(" SELECT 1 ;\n\tSELECT 2\r\n"), (statements{"SELECT 1", "SELECT 2"}));
  EXPECT_EQ(split_sql_statements("SELECT 1;;SELECT 2;"), (statements{"SELECT 1", "SELECT 2"}));
}

TEST(split_sql_statements, drops_what_is_only_blanks_or_comments) {
  EXPECT_TRUE(split_sql_statements("").empty());
  EXPECT_TRUE(split_sql_statements(" \n\t ; ;").empty());
  EXPECT_TRUE(split_sql_statements("-- a; b\n/* c; */;").empty());
}

TEST(split_sql_statements, a_line_comment_ends_at_the_newline) {
  EXPECT_EQ(split_sql_statements("SELECT 1 -- x; y\n; SELECT 2"), (statements{"SELECT 1 -- x; y", "SELECT 2"}));
}

TEST(split_sql_statements, only_e_strings_take_backslash_escapes) {
  // In a plain string a backslash is an ordinary character, so the quote
  // after it closes the string.
  EXPECT_EQ(split_sql_statements(R"(SELECT 'a\';SELECT 2)"), (statements{R"(SELECT 'a\')", "SELECT 2"}));
  EXPECT_EQ(split_sql_statements(R"(SELECT e'a\';b';SELECT 2)"), (statements{R"(SELECT e'a\';b')", "SELECT 2"}));
  // "type'..." is not an E string: the E is the end of an identifier.
  EXPECT_EQ(split_sql_statements(R"(SELECT typE'a\';SELECT 2)"), (statements{R"(SELECT typE'a\')", "SELECT 2"}));
}

TEST(split_sql_statements, dollar_quotes_need_a_matching_tag) {
  EXPECT_EQ(split_sql_statements("SELECT $a$ $b$ ; $b$ $a$; SELECT 2"),
            (statements{"SELECT $a$ $b$ ; $b$ $a$", "SELECT 2"}));
  // x$y$ is part of an identifier and $1 a parameter: neither opens a quote.
  EXPECT_EQ(split_sql_statements("SELECT x$y$;SELECT $1$;SELECT 3"),
            (statements{"SELECT x$y$", "SELECT $1$", "SELECT 3"}));
  EXPECT_EQ(split_sql_statements("SELECT 1$"), (statements{"SELECT 1$"}));
}

TEST(split_sql_statements, an_unclosed_quote_or_comment_runs_to_the_end) {
  EXPECT_EQ(split_sql_statements("SELECT 'a;b"), (statements{"SELECT 'a;b"}));
  EXPECT_EQ(split_sql_statements("SELECT $q$ a; b"), (statements{"SELECT $q$ a; b"}));
  EXPECT_EQ(split_sql_statements("SELECT 1 /* a; /* b; */"), (statements{"SELECT 1 /* a; /* b; */"}));
  EXPECT_EQ(split_sql_statements("SELECT E'\\"), (statements{"SELECT E'\\"}));
}

TEST(split_sql_statements, a_function_body_stays_whole) {
  const auto s = split_sql_statements(
      "CREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN NEW.x := 1; RETURN NEW; END $body$ LANGUAGE plpgsql;\n"
      "CREATE TABLE \"t\"\"; x\" (id INT);");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0], "CREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN NEW.x := 1; RETURN NEW; END $body$ "
                  "LANGUAGE plpgsql");
  EXPECT_EQ(s[1], "CREATE TABLE \"t\"\"; x\" (id INT)");
}

}  // namespace
}  // namespace feed
