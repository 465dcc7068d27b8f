#include "store/sqlite/sqlite_store.h"

#include <algorithm>

#include <fmt/format.h>
#include <sqlite3.h>

#include "base/log.h"
#include "store/migration.h"

namespace feed {

// A connection plus the RAII needed to never leak a handle or statement.
struct sqlite_store::connection {
  sqlite3* db = nullptr;
  ~connection() { sqlite3_close_v2(db); }

  error fail(std::string_view what) const {
    const int code = sqlite3_errcode(db);
    const auto kind = (code == SQLITE_BUSY || code == SQLITE_LOCKED || code == SQLITE_IOERR || code == SQLITE_FULL ||
                       code == SQLITE_CANTOPEN)
                          ? errc::unavailable
                          : errc::storage;
    return error(kind, fmt::format("sqlite: {}: {}", what, sqlite3_errmsg(db)));
  }

  result<void> exec(const char* sql) const {
    char* msg = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
      std::string text = msg ? msg : "unknown error";
      sqlite3_free(msg);
      return error(errc::storage, fmt::format("sqlite: {}", text));
    }
    return {};
  }
};

namespace {

struct stmt_deleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using statement = std::unique_ptr<sqlite3_stmt, stmt_deleter>;

statement prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &s, nullptr);
  return statement(s);
}

void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

std::string column_text(sqlite3_stmt* s, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))) : std::string();
}

message row_to_message(sqlite3_stmt* s) {
  message m;
  m.id = column_text(s, 0);
  m.user_id = column_text(s, 1);
  m.content = column_text(s, 2);
  m.created_at = timestamp(std::chrono::microseconds(sqlite3_column_int64(s, 3)));
  m.seq = seq_t{sqlite3_column_int64(s, 4)};
  return m;
}

// Rolls back unless committed, so every early return leaves no open
// transaction behind.
class transaction {
 public:
  explicit transaction(sqlite3* db) : db_(db) {}
  ~transaction() {
    if (db_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void committed() { db_ = nullptr; }

 private:
  sqlite3* db_;
};

result<void> migrate(sqlite3* db, const std::vector<schema::migration>& migrations) {
  auto exec = [db](const std::string& sql) -> result<void> {
    char* msg = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
      std::string text = msg ? msg : sqlite3_errmsg(db);
      sqlite3_free(msg);
      return error(errc::storage, text);
    }
    return {};
  };
  // BEGIN IMMEDIATE takes the write lock: a second process starting at the
  // same time waits here instead of applying the same migration twice.
  for (;;) {
    if (auto r = exec("BEGIN IMMEDIATE"); !r) return error(errc::storage, "migration lock: " + r.err().message);
    transaction tx(db);
    if (auto r = exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL, dirty INTEGER NOT NULL)");
        !r)
      return r;
    std::int64_t version = 0;
    bool dirty = false;
    if (auto s = prepare(db, "SELECT version, dirty FROM schema_migrations LIMIT 1"); s && sqlite3_step(s.get()) == SQLITE_ROW) {
      version = sqlite3_column_int64(s.get(), 0);
      dirty = sqlite3_column_int(s.get(), 1) != 0;
    }
    if (dirty)
      return error(errc::storage, fmt::format("schema_migrations says version {} is dirty: a migration failed "
                                              "half-way; repair the database and clear the flag",
                                              version));
    auto next = std::find_if(migrations.begin(), migrations.end(), [&](const auto& m) { return m.version > version; });
    if (next == migrations.end()) {
      if (auto r = exec("COMMIT"); !r) return r;
      tx.committed();
      return {};
    }
    // SQLite runs DDL inside the transaction, so a failing migration rolls
    // back whole and never leaves the dirty flag set.
    if (auto r = exec(next->up_sql); !r)
      return error(errc::storage, fmt::format("migration {} failed: {}", next->name, r.err().message));
    if (auto r = exec(fmt::format("DELETE FROM schema_migrations; INSERT INTO schema_migrations VALUES ({}, 0)",
                                  next->version));
        !r)
      return r;
    if (auto r = exec("COMMIT"); !r) return r;
    tx.committed();
    spdlog::info("sqlite: applied migration {}", next->name);
  }
}

}  // namespace

sqlite_store::sqlite_store(sqlite_options opts) : opts_(std::move(opts)) {}
sqlite_store::~sqlite_store() = default;

result<std::unique_ptr<sqlite_store::connection>> sqlite_store::connect() const {
  auto c = std::make_unique<connection>();
  const int rc = sqlite3_open_v2(opts_.path.c_str(), &c->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK)
    return error(errc::unavailable, fmt::format("cannot open {}: {}", opts_.path.string(),
                                                c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc)));
  sqlite3_busy_timeout(c->db, opts_.busy_timeout_ms);
  const auto pragmas = fmt::format("PRAGMA journal_mode=WAL; PRAGMA synchronous={}; PRAGMA foreign_keys=ON;",
                                   opts_.synchronous);
  if (auto r = c->exec(pragmas.c_str()); !r) return r.err();
  return c;
}

result<std::unique_ptr<sqlite_store>> sqlite_store::open(const sqlite_options& opts) {
  if (opts.synchronous != "FULL" && opts.synchronous != "NORMAL")
    return error(errc::invalid_input, "sqlite synchronous must be FULL or NORMAL");
  std::error_code ec;
  if (opts.path.has_parent_path()) std::filesystem::create_directories(opts.path.parent_path(), ec);
  if (ec) return error(errc::unavailable, fmt::format("cannot create {}: {}", opts.path.parent_path().string(), ec.message()));
  std::unique_ptr<sqlite_store> s(new sqlite_store(opts));
  auto w = s->connect();
  if (!w) return w.err();
  auto migrations = schema::collect_migrations(schema::sqlite_migration_files());
  if (!migrations) return migrations.err();
  if (auto r = migrate((*w)->db, *migrations); !r) return r.err();
  s->writer_ = std::move(*w);
  return s;
}

result<std::unique_ptr<sqlite_store::connection>> sqlite_store::take_reader() {
  {
    std::lock_guard lock(readers_mu_);
    if (!readers_.empty()) {
      auto c = std::move(readers_.back());
      readers_.pop_back();
      return c;
    }
  }
  return connect();
}

void sqlite_store::return_reader(std::unique_ptr<connection> c) {
  std::lock_guard lock(readers_mu_);
  if (readers_.size() < opts_.max_readers) readers_.push_back(std::move(c));
}

result<std::vector<message>> sqlite_store::insert_batch(std::span<const message> batch) {
  if (batch.empty()) return std::vector<message>{};
  return writes_.track([&] {
    std::lock_guard lock(write_mu_);
    return insert_locked(batch);
  });
}

result<std::vector<message>> sqlite_store::insert_locked(std::span<const message> batch) {
  std::vector<message> out;
  out.reserve(batch.size());
  sqlite3* db = writer_->db;
  if (auto r = writer_->exec("BEGIN IMMEDIATE"); !r) return writer_->fail("begin");
  transaction tx(db);

  std::int64_t last = 0;
  {
    auto s = prepare(db, "SELECT COALESCE(MAX(seq), 0) FROM messages");
    if (!s || sqlite3_step(s.get()) != SQLITE_ROW) return writer_->fail("max seq");
    last = sqlite3_column_int64(s.get(), 0);
  }
  auto insert = prepare(db,
                        "INSERT INTO messages (id, user_id, content, created_at, seq) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT (id) DO NOTHING");
  auto existing = prepare(db, "SELECT id, user_id, content, created_at, seq FROM messages WHERE id = ?");
  if (!insert || !existing) return writer_->fail("prepare insert");
  for (const auto& m : batch) {
    sqlite3_reset(insert.get());
    bind_text(insert.get(), 1, m.id);
    bind_text(insert.get(), 2, m.user_id);
    bind_text(insert.get(), 3, m.content);
    sqlite3_bind_int64(insert.get(), 4, m.created_at.time_since_epoch().count());
    sqlite3_bind_int64(insert.get(), 5, last + 1);
    if (sqlite3_step(insert.get()) != SQLITE_DONE) return writer_->fail("insert");
    if (sqlite3_changes(db) == 1) {
      out.push_back(m);
      out.back().seq = seq_t{++last};
      continue;
    }
    sqlite3_reset(existing.get());
    bind_text(existing.get(), 1, m.id);
    if (sqlite3_step(existing.get()) != SQLITE_ROW) return writer_->fail("read existing");
    out.push_back(row_to_message(existing.get()));
  }
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return writer_->fail("commit");
  tx.committed();
  std::sort(out.begin(), out.end(), [](const message& a, const message& b) { return a.seq < b.seq; });
  return out;
}

result<std::vector<message>> sqlite_store::read(const read_query& q) {
  auto c = take_reader();
  if (!c) return c.err();
  std::string sql = "SELECT id, user_id, content, created_at, seq FROM messages WHERE seq > ?";
  if (q.up_to) sql += " AND seq <= ?";
  if (q.user_id) sql += " AND user_id = ?";
  sql += q.newest_first ? " ORDER BY seq DESC LIMIT ?" : " ORDER BY seq LIMIT ?";
  auto s = prepare((*c)->db, sql);
  if (!s) return (*c)->fail("prepare read");
  int i = 1;
  sqlite3_bind_int64(s.get(), i++, q.after.value());
  if (q.up_to) sqlite3_bind_int64(s.get(), i++, q.up_to->value());
  if (q.user_id) bind_text(s.get(), i++, *q.user_id);
  sqlite3_bind_int64(s.get(), i++, static_cast<std::int64_t>(q.limit));
  std::vector<message> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) out.push_back(row_to_message(s.get()));
  if (rc != SQLITE_DONE) return (*c)->fail("read");
  s.reset();
  return_reader(std::move(*c));
  return out;
}

result<std::optional<message>> sqlite_store::find(const std::string& id) {
  auto c = take_reader();
  if (!c) return c.err();
  auto s = prepare((*c)->db, "SELECT id, user_id, content, created_at, seq FROM messages WHERE id = ?");
  if (!s) return (*c)->fail("prepare find");
  bind_text(s.get(), 1, id);
  std::optional<message> found;
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW) found = row_to_message(s.get());
  else if (rc != SQLITE_DONE) return (*c)->fail("find");
  s.reset();
  return_reader(std::move(*c));
  return found;
}

result<seq_t> sqlite_store::max_seq() {
  auto c = take_reader();
  if (!c) return c.err();
  auto s = prepare((*c)->db, "SELECT COALESCE(MAX(seq), 0) FROM messages");
  if (!s || sqlite3_step(s.get()) != SQLITE_ROW) return (*c)->fail("max seq");
  seq_t v{sqlite3_column_int64(s.get(), 0)};
  s.reset();
  return_reader(std::move(*c));
  return v;
}

result<void> sqlite_store::ping() {
  auto v = max_seq();
  if (!v) return v.err();
  return {};
}

result<std::int64_t> sqlite_store::schema_version() {
  auto c = take_reader();
  if (!c) return c.err();
  auto s = prepare((*c)->db, "SELECT version FROM schema_migrations LIMIT 1");
  if (!s || sqlite3_step(s.get()) != SQLITE_ROW) return (*c)->fail("schema version");
  std::int64_t v = sqlite3_column_int64(s.get(), 0);
  s.reset();
  return_reader(std::move(*c));
  return v;
}

}  // namespace feed
