#include "store/pg/pg_migrate.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <thread>

#include <fmt/format.h>

#include "base/log.h"

namespace feed {

namespace {

bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Ends (rolls back unless committed) the transaction holding the schema lock.
class lock_holder {
 public:
  explicit lock_holder(pg_connection& c) : c_(&c) {}
  ~lock_holder() {
    if (c_) c_->rollback();
  }
  result<void> release() {
    auto r = c_->exec("release schema lock", "COMMIT");
    c_ = nullptr;
    if (!r) return r.err();
    return {};
  }

 private:
  pg_connection* c_;
};

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

struct schema_state {
  std::int64_t version = 0;  // 0: nothing applied yet
  bool dirty = false;
};

result<schema_state> read_state(pg_connection& c) {
  auto rows = c.exec("read schema_migrations",
                     "SELECT version, dirty FROM schema_migrations ORDER BY version DESC LIMIT 1");
  if (!rows) return rows.err();
  schema_state s;
  if (rows->rows() == 0) return s;
  const auto v = rows->value(0, 0);
  if (std::from_chars(v.data(), v.data() + v.size(), s.version).ec != std::errc{})
    return error(errc::corrupt, fmt::format("postgres: schema_migrations.version is not a number: {}", v));
  const auto d = rows->value(0, 1);
  s.dirty = d == "t" || d == "true";
  return s;
}

// golang-migrate keeps exactly one row; replace it atomically.
result<void> write_state(pg_connection& c, std::int64_t version, bool dirty) {
  auto r = c.exec("write schema_migrations",
                  fmt::format("BEGIN; DELETE FROM schema_migrations; "
                              "INSERT INTO schema_migrations (version, dirty) VALUES ({}, {}); COMMIT",
                              version, dirty ? "true" : "false"));
  if (!r) return r.err();
  return {};
}

result<void> apply(pg_connection& c, const schema::migration& m) {
  if (auto r = write_state(c, m.version, true); !r) return r;
  const auto statements = split_sql_statements(m.up_sql);
  for (std::size_t i = 0; i < statements.size(); ++i) {
    if (auto r = c.exec(m.name, statements[i]); !r)
      return error(r.err().code,
                   fmt::format("migration {} failed at statement {} of {}: {}; schema_migrations is left at "
                               "version {} with dirty = true: repair the schema, then clear the flag",
                               m.name, i + 1, statements.size(), r.err().message, m.version));
  }
  return write_state(c, m.version, false);
}

}  // namespace

result<std::int64_t> migrate_pg(const pg_connect_options& opts, const std::vector<schema::migration>& migrations) {
  // DDL on a large table may take longer than any statement timeout meant
  // for feed queries.
  pg_connect_options admin = opts;
  admin.statement_timeout = std::chrono::milliseconds(0);
  auto lock_conn = pg_connection::connect(admin);
  if (!lock_conn) return lock_conn.err();
  auto work = pg_connection::connect(admin);
  if (!work) return work.err();
  pg_connection& c = **work;

  if (auto r = bootstrap(c); !r) return r.err();

  pg_connection& l = **lock_conn;
  if (auto r = l.exec("take schema lock", "BEGIN"); !r) return r.err();
  lock_holder lock(l);
  if (auto r = l.exec("take schema lock", "SELECT id FROM feed_schema_lock WHERE id = 1 FOR UPDATE"); !r)
    return r.err();

  for (;;) {
    auto state = read_state(c);
    if (!state) return state.err();
    if (state->dirty)
      return error(errc::storage,
                   fmt::format("postgres: schema_migrations says version {} is dirty: a migration failed half-way; "
                               "repair the schema, then set dirty = false",
                               state->version));
    auto next = std::find_if(migrations.begin(), migrations.end(),
                             [&](const schema::migration& m) { return m.version > state->version; });
    if (next == migrations.end()) {
      if (auto r = lock.release(); !r) return r.err();
      return state->version;
    }
    spdlog::info("postgres: applying migration {}", next->name);
    if (auto r = apply(c, *next); !r) return r.err();
  }
}

std::vector<std::string> split_sql_statements(std::string_view sql) {
  std::vector<std::string> out;
  std::size_t start = 0;
  bool has_code = false;  // the current statement holds more than comments
  auto finish = [&](std::size_t end) {
    if (has_code) {
      auto text = sql.substr(start, end - start);
      const auto first = text.find_first_not_of(" \t\r\n");
      const auto last = text.find_last_not_of(" \t\r\n");
      out.emplace_back(text.substr(first, last - first + 1));
    }
    start = end + 1;
    has_code = false;
  };
  const std::size_t n = sql.size();
  std::size_t i = 0;
  while (i < n) {
    const char ch = sql[i];
    if (ch == '-' && i + 1 < n && sql[i + 1] == '-') {
      while (i < n && sql[i] != '\n') ++i;
      continue;
    }
    if (ch == '/' && i + 1 < n && sql[i + 1] == '*') {
      int depth = 0;
      while (i < n) {
        if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
          ++depth, i += 2;
        } else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/') {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
      continue;
    }
    if (ch == ';') {
      finish(i);
      ++i;
      continue;
    }
    if (!std::isspace(static_cast<unsigned char>(ch))) has_code = true;
    if (ch == '\'' || ch == '"') {
      // E'...' strings take backslash escapes; '' and "" escape themselves.
      const bool backslashes = ch == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                               (i == 1 || !ident_char(sql[i - 2]));
      ++i;
      while (i < n) {
        if (backslashes && sql[i] == '\\') {
          i += 2;
        } else if (sql[i] == ch) {
          if (i + 1 < n && sql[i + 1] == ch) {
            i += 2;
          } else {
            ++i;
            break;
          }
        } else {
          ++i;
        }
      }
      continue;
    }
    if (ch == '$' && (i == 0 || !ident_char(sql[i - 1]))) {
      // $tag$ ... $tag$ (tag empty or an identifier not starting with a
      // digit); $1 is a parameter, not a quote.
      std::size_t j = i + 1;
      if (j < n && !std::isdigit(static_cast<unsigned char>(sql[j]))) {
        while (j < n && ident_char(sql[j])) ++j;
        if (j < n && sql[j] == '$') {
          const auto tag = sql.substr(i, j - i + 1);
          const auto close = sql.find(tag, j + 1);
          i = close == std::string_view::npos ? n : close + tag.size();
          continue;
        }
      }
    }
    ++i;
  }
  finish(n);
  return out;
}

}  // namespace feed
