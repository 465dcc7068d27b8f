#include "store/pg/pg_migrate.h"

#include <cctype>
#include <charconv>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "store/rollback_guard.h"

namespace feed {

namespace {

// The lock table and golang-migrate's table. CREATE TABLE IF NOT EXISTS is
// not race-free on PostgreSQL (two sessions may both try and one fails on a
// catalog unique index), so a conflict is simply retried.
result<void> bootstrap(pg_connection& c) {
  static const char* const statements[] = {
      "CREATE TABLE IF NOT EXISTS feed_schema_lock (id INT PRIMARY KEY)",
      "INSERT INTO feed_schema_lock (id) VALUES (1) ON CONFLICT (id) DO NOTHING",
      "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)",
  };
  for (const char* sql : statements) {
    for (int attempt = 1;; ++attempt) {
      auto r = c.exec("create migration tables", sql);
      if (r) break;
      const auto& state = c.last_sqlstate();
      // 23505/42710/42P07: the other session's catalog rows won (unique
      // index, type or table already there); 40001/40P01 on CockroachDB.
      const bool race =
          state == "23505" || state == "42710" || state == "42P07" || state == "40001" || state == "40P01";
      if (!race || attempt == 5) return r.err();
      std::this_thread::sleep_for(std::chrono::milliseconds(20 * attempt));
    }
  }
  return {};
}

// `lock_` holds the schema lock from lock() to finish() (or destruction);
// `work_` reads the state and applies the migrations.
class pg_schema final : public schema::schema_target {
 public:
  pg_schema(pg_connection& lock, pg_connection& work) : lock_(lock), work_(work) {}

  result<void> lock() {
    if (auto r = lock_.exec("take schema lock", "BEGIN"); !r) return r.err();
    held_.emplace([this] { lock_.rollback(); });
    if (auto r = lock_.exec("take schema lock", "SELECT id FROM feed_schema_lock WHERE id = 1 FOR UPDATE"); !r)
      return r.err();
    return {};
  }

  std::string_view name() const override { return "postgres"; }

  result<schema::schema_state> read_state() override {
    auto rows = work_.exec("read schema_migrations",
                           "SELECT version, dirty FROM schema_migrations ORDER BY version DESC LIMIT 1");
    if (!rows) return rows.err();
    schema::schema_state s;
    if (rows->rows() == 0) return s;
    const auto v = rows->value(0, 0);
    if (std::from_chars(v.data(), v.data() + v.size(), s.version).ec != std::errc{})
      return error(errc::corrupt, fmt::format("postgres: schema_migrations.version is not a number: {}", v));
    const auto d = rows->value(0, 1);
    s.dirty = d == "t" || d == "true";
    return s;
  }

  result<void> apply(const schema::migration& m) override {
    if (auto r = write_state(m.version, true); !r) return r;
    const auto statements = split_sql_statements(m.up_sql);
    for (std::size_t i = 0; i < statements.size(); ++i) {
      if (auto r = work_.exec(m.name, statements[i]); !r)
        return error(r.err().code,
                     fmt::format("migration {} failed at statement {} of {}: {}; schema_migrations is left at "
                                 "version {} with dirty = true: repair the schema, then clear the flag",
                                 m.name, i + 1, statements.size(), r.err().message, m.version));
    }
    return write_state(m.version, false);
  }

  // Releases the schema lock; a failed COMMIT ended the transaction too.
  result<void> finish() override {
    auto r = lock_.exec("release schema lock", "COMMIT");
    held_->committed();
    if (!r) return r.err();
    return {};
  }

 private:
  // golang-migrate keeps exactly one row; replace it atomically.
  result<void> write_state(std::int64_t version, bool dirty) {
    auto r = work_.exec("write schema_migrations",
                        fmt::format("BEGIN; DELETE FROM schema_migrations; "
                                    "INSERT INTO schema_migrations (version, dirty) VALUES ({}, {}); COMMIT",
                                    version, dirty ? "true" : "false"));
    if (!r) return r.err();
    return {};
  }

  pg_connection& lock_;
  pg_connection& work_;
  std::optional<rollback_guard> held_;  // the lock's transaction
};

}  // namespace

result<std::int64_t> migrate_pg(const pg_connect_options& opts, const std::vector<schema::migration>& migrations) {
  // DDL on a large table may take longer than any statement timeout or
  // answer bound meant for feed queries, and the schema lock's transaction
  // waits idle all the while.
  pg_connect_options admin = opts;
  admin.statement_timeout = std::chrono::milliseconds(0);
  admin.idle_in_transaction_timeout = std::chrono::milliseconds(0);
  admin.answer_timeout = std::chrono::milliseconds(0);
  auto lock_conn = pg_connection::connect(admin);
  if (!lock_conn) return lock_conn.err();
  auto work = pg_connection::connect(admin);
  if (!work) return work.err();
  if (auto r = bootstrap(**work); !r) return r.err();

  pg_schema target(**lock_conn, **work);
  if (auto r = target.lock(); !r) return r.err();
  return schema::migrate(target, migrations);
}

namespace {

bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool starts_at(std::string_view sql, std::size_t i, std::string_view what) { return sql.substr(i, what.size()) == what; }

// Past the "--" comment at i: the end of its line (the newline stays).
std::size_t skip_line_comment(std::string_view sql, std::size_t i) {
  const auto eol = sql.find('\n', i);
  return eol == std::string_view::npos ? sql.size() : eol;
}

// Past the "/* */" comment at i; these comments nest.
std::size_t skip_block_comment(std::string_view sql, std::size_t i) {
  int depth = 0;
  while (i < sql.size()) {
    if (starts_at(sql, i, "/*")) {
      ++depth, i += 2;
    } else if (starts_at(sql, i, "*/")) {
      i += 2;
      if (--depth == 0) break;
    } else {
      ++i;
    }
  }
  return i;
}

// Past the '' string or "" identifier at i. A doubled quote stands for
// itself; E'' strings take backslash escapes as well.
std::size_t skip_quoted(std::string_view sql, std::size_t i) {
  const char quote = sql[i];
  const bool backslashes = quote == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                           (i == 1 || !ident_char(sql[i - 2]));
  ++i;
  while (i < sql.size()) {
    if (backslashes && sql[i] == '\\') {
      i += 2;
    } else if (sql[i] != quote) {
      ++i;
    } else if (i + 1 < sql.size() && sql[i + 1] == quote) {
      i += 2;
    } else {
      return i + 1;
    }
  }
  return i;
}

// The $tag$ that opens a dollar-quoted string at i, or nothing. The tag is
// empty or an identifier not starting with a digit: $1 is a parameter.
std::optional<std::string_view> dollar_tag(std::string_view sql, std::size_t i) {
  if (sql[i] != '$' || (i > 0 && ident_char(sql[i - 1]))) return std::nullopt;
  std::size_t j = i + 1;
  if (j >= sql.size() || std::isdigit(static_cast<unsigned char>(sql[j]))) return std::nullopt;
  while (j < sql.size() && ident_char(sql[j])) ++j;
  if (j >= sql.size() || sql[j] != '$') return std::nullopt;
  return sql.substr(i, j - i + 1);
}

// Past the string that `tag` opens at i: past the same tag again, or the
// end of the text when it never comes.
std::size_t skip_dollar_quoted(std::string_view sql, std::size_t i, std::string_view tag) {
  const auto close = sql.find(tag, i + tag.size());
  return close == std::string_view::npos ? sql.size() : close + tag.size();
}

// Collects the statements between semicolons, leaving out those that are
// only comments and blanks.
class statement_list {
 public:
  explicit statement_list(std::string_view sql) : sql_(sql) {}

  void saw_code() { has_code_ = true; }

  // The current statement ends at `end` (a semicolon or the end of the text).
  void end_at(std::size_t end) {
    if (has_code_) {
      const auto text = sql_.substr(start_, end - start_);
      const auto first = text.find_first_not_of(" \t\r\n");
      const auto last = text.find_last_not_of(" \t\r\n");
      out_.emplace_back(text.substr(first, last - first + 1));
    }
    start_ = end + 1;
    has_code_ = false;
  }

  std::vector<std::string> take() && { return std::move(out_); }

 private:
  std::string_view sql_;
  std::size_t start_ = 0;  // where the current statement begins
  bool has_code_ = false;  // it holds more than comments and blanks
  std::vector<std::string> out_;
};

}  // namespace

std::vector<std::string> split_sql_statements(std::string_view sql) {
  statement_list statements(sql);
  std::size_t i = 0;
  while (i < sql.size()) {
    if (starts_at(sql, i, "--")) {
      i = skip_line_comment(sql, i);
      continue;
    }
    if (starts_at(sql, i, "/*")) {
      i = skip_block_comment(sql, i);
      continue;
    }
    const char ch = sql[i];
    if (ch == ';') {
      statements.end_at(i++);
      continue;
    }
    if (!std::isspace(static_cast<unsigned char>(ch))) statements.saw_code();
    if (ch == '\'' || ch == '"') {
      i = skip_quoted(sql, i);
    } else if (const auto tag = dollar_tag(sql, i)) {
      i = skip_dollar_quoted(sql, i, *tag);
    } else {
      ++i;
    }
  }
  statements.end_at(sql.size());
  return std::move(statements).take();
}

}  // namespace feed
