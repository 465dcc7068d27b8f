#include "store/sqlite/sqlite_store.h"

#include <algorithm>
#include <array>
#include <functional>
#include <limits>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <sqlite3.h>

#include "base/free_space.h"
#include "store/migration.h"
#include "store/rollback_guard.h"
#include "store/sqlite/page_cache.h"
#include "store/sqlite/wal_write_buffer.h"

namespace feed {

namespace {
// The most rows one INSERT statement of insert_fresh carries: 2^6.
constexpr std::size_t kRowsLog2 = 6;
struct stmt_deleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using statement = std::unique_ptr<sqlite3_stmt, stmt_deleter>;
}  // namespace

// A connection plus the RAII needed to never leak a handle or statement.
struct sqlite_store::connection {
  sqlite3* db = nullptr;
  // The writer's statements, prepared once: compiling them per batch cost
  // more than binding a small batch's rows (and sqlite3_exec of BEGIN and
  // COMMIT compiled two more each time).
  statement begin, commit, max_seq, insert, existing;
  // The writer's statements that fill messages_by_user (index_users).
  statement user_through, add_users, set_user_through;
  // insert_rows[k] inserts 2^k rows in one statement (insert_fresh).
  std::array<statement, kRowsLog2 + 1> insert_rows;
  ~connection() {
    begin.reset(), commit.reset(), max_seq.reset(), insert.reset(), existing.reset();  // finalized before the close
    user_through.reset(), add_users.reset(), set_user_through.reset();
    for (auto& s : insert_rows) s.reset();
    sqlite3_close_v2(db);
  }

  error fail(std::string_view what) const {
    const int code = sqlite3_errcode(db);
    const auto kind = (code == SQLITE_BUSY || code == SQLITE_LOCKED || code == SQLITE_IOERR || code == SQLITE_FULL ||
                       code == SQLITE_CANTOPEN)
                          ? errc::unavailable
                          : errc::storage;
    return error(kind, fmt::format("sqlite: {}: {}", what, sqlite3_errmsg(db)));
  }

  result<void> exec(const char* sql) const;

  // The writer's transaction around one batch, its statements prepared
  // once: begin_write() runs BEGIN IMMEDIATE (the write lock, taken up
  // front; COMMIT is prepared before it, so a batch whose rows went in never
  // fails for want of it), last_seq() reads the highest stored seq inside
  // the transaction, commit_write() runs COMMIT. Each leaves its statement
  // reset whatever the outcome. Nothing here rolls back: the caller arms a
  // rollback_guard right after begin_write() succeeds and disarms it after
  // commit_write() succeeds.
  result<void> begin_write();
  result<std::int64_t> last_seq();
  result<void> commit_write();

  // Inside the writer's transaction, before the batch's rows: when `lag` or
  // more stored posts (those up to `last`) are past messages_by_user, adds
  // them to it. Done in the batch's own transaction, it costs no commit or
  // sync of its own, and the table and its bound move together.
  result<void> index_users(std::int64_t last, std::size_t lag);

 private:
  // One step of `s`, which must finish it (SQLITE_DONE); the error names `what`.
  result<void> run(sqlite3_stmt* s, std::string_view what);
  // The first column of the first row of `s`, left reset; the error names `what`.
  result<std::int64_t> one_int(sqlite3_stmt* s, std::string_view what);
};

namespace {

// Runs `sql` (any number of statements); the error is SQLite's message.
result<void> exec_sql(sqlite3* db, const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string text = msg ? msg : sqlite3_errmsg(db);
    sqlite3_free(msg);
    return error(errc::storage, std::move(text));
  }
  return {};
}

statement prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &s, nullptr);
  return statement(s);
}

void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

// For values that outlive the statement's next step and reset (the batch's
// strings): SQLite reads them in place instead of copying each into a
// malloc'ed buffer (three heap calls per inserted row).
void bind_text_static(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
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

// Every version of this store has kept schema_migrations from its first
// migration on, so a database with tables but without it is another
// program's (a --data-dir pointed at the wrong place): migrating it would
// add our tables beside that program's, or stop half way on a name both
// use. Checked before the connection switches the file to WAL, so such a
// file is left exactly as it was.
result<void> refuse_foreign(sqlite3* db) {
  auto ours = prepare(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
  if (!ours) return error(errc::storage, fmt::format("reading the schema: {}", sqlite3_errmsg(db)));
  if (sqlite3_step(ours.get()) == SQLITE_ROW) return {};
  auto others = prepare(db,
                        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name LIMIT 6");
  if (!others) return error(errc::storage, fmt::format("reading the schema: {}", sqlite3_errmsg(db)));
  std::vector<std::string> names;
  while (sqlite3_step(others.get()) == SQLITE_ROW) names.push_back(column_text(others.get(), 0));
  if (names.empty()) return {};
  if (names.size() > 5) names.back() = "...";
  return error(errc::storage, fmt::format("the database holds tables of another program ({}) and no "
                                          "schema_migrations; it is left unchanged: use another --data-dir",
                                          fmt::join(names, ", ")));
}

// Best effort: the guard that calls it has no one to report to.
std::function<void()> rollback_of(sqlite3* db) {
  return [db] { sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr); };
}

// Each step of the migration loop is one transaction, begun in read_state()
// with BEGIN IMMEDIATE: that takes the write lock, so a second process
// starting at the same time waits there instead of applying the same
// migration twice. SQLite runs DDL inside the transaction, so a failing
// migration rolls back whole and never leaves the dirty flag set.
class sqlite_schema final : public schema::schema_target {
 public:
  explicit sqlite_schema(sqlite3* db) : db_(db) {}

  std::string_view name() const override { return "sqlite"; }

  result<schema::schema_state> read_state() override {
    if (auto r = exec("BEGIN IMMEDIATE"); !r) return error(errc::storage, "migration lock: " + r.err().message);
    step_.emplace(rollback_of(db_));
    if (auto r = exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL, dirty INTEGER NOT NULL)");
        !r)
      return r.err();
    schema::schema_state state;
    if (auto s = prepare(db_, "SELECT version, dirty FROM schema_migrations LIMIT 1");
        s && sqlite3_step(s.get()) == SQLITE_ROW) {
      state.version = sqlite3_column_int64(s.get(), 0);
      state.dirty = sqlite3_column_int(s.get(), 1) != 0;
    }
    return state;
  }

  result<void> apply(const schema::migration& m) override {
    if (auto r = exec(m.up_sql); !r)
      return error(errc::storage, fmt::format("migration {} failed: {}", m.name, r.err().message));
    if (auto r = exec(fmt::format("DELETE FROM schema_migrations; INSERT INTO schema_migrations VALUES ({}, 0)",
                                  m.version));
        !r)
      return r;
    return commit();
  }

  result<void> finish() override { return commit(); }

 private:
  result<void> exec(const std::string& sql) { return exec_sql(db_, sql.c_str()); }

  result<void> commit() {
    if (auto r = exec("COMMIT"); !r) return r;
    step_->committed();
    return {};
  }

  sqlite3* db_;
  std::optional<rollback_guard> step_;  // the current step's transaction
};

}  // namespace

result<void> sqlite_store::connection::exec(const char* sql) const {
  if (auto r = exec_sql(db, sql); !r) return error(errc::storage, fmt::format("sqlite: {}", r.err().message));
  return {};
}

result<void> sqlite_store::connection::run(sqlite3_stmt* s, std::string_view what) {
  std::optional<error> e;
  if (sqlite3_step(s) != SQLITE_DONE) e = fail(what);
  sqlite3_reset(s);
  if (e) return *e;
  return {};
}

result<void> sqlite_store::connection::begin_write() {
  if (!begin) begin = prepare(db, "BEGIN IMMEDIATE");
  if (!commit) commit = prepare(db, "COMMIT");
  if (!begin || !commit) return fail("prepare begin");
  return run(begin.get(), "begin");
}

result<void> sqlite_store::connection::commit_write() { return run(commit.get(), "commit"); }

result<void> sqlite_store::connection::index_users(std::int64_t last, std::size_t lag) {
  if (!user_through) user_through = prepare(db, "SELECT seq FROM messages_by_user_through");
  // OR IGNORE, as in insert_fresh: no row can abort the statement, so it
  // needs no statement journal. (No pair can be there already: the bound
  // moves with the rows, in one transaction.)
  if (!add_users)
    add_users = prepare(db,
                        "INSERT OR IGNORE INTO messages_by_user (user_id, seq) "
                        "SELECT user_id, seq FROM messages WHERE seq > ?1 AND seq <= ?2");
  if (!set_user_through) set_user_through = prepare(db, "UPDATE messages_by_user_through SET seq = ?1");
  if (!user_through || !add_users || !set_user_through) return fail("prepare user index");
  const auto through_read = one_int(user_through.get(), "user index bound");
  if (!through_read) return through_read.err();
  const std::int64_t through = *through_read;
  if (last - through < static_cast<std::int64_t>(lag)) return {};
  sqlite3_bind_int64(add_users.get(), 1, through);
  sqlite3_bind_int64(add_users.get(), 2, last);
  if (auto r = run(add_users.get(), "user index"); !r) return r;
  sqlite3_bind_int64(set_user_through.get(), 1, last);
  return run(set_user_through.get(), "user index bound");
}

result<std::int64_t> sqlite_store::connection::last_seq() {
  if (!max_seq) max_seq = prepare(db, "SELECT COALESCE(MAX(seq), 0) FROM messages");
  if (!max_seq) return fail("prepare max seq");
  return one_int(max_seq.get(), "max seq");
}

result<std::int64_t> sqlite_store::connection::one_int(sqlite3_stmt* s, std::string_view what) {
  if (sqlite3_step(s) != SQLITE_ROW) {
    auto e = fail(what);
    sqlite3_reset(s);
    return e;
  }
  const std::int64_t v = sqlite3_column_int64(s, 0);
  sqlite3_reset(s);
  return v;
}

sqlite_store::sqlite_store(sqlite_options opts) : opts_(std::move(opts)) {}

// What sqlite3_busy_timeout does (sleep in growing steps until the timeout
// has been slept), and also give up once stop_waiting_at's deadline has
// passed, never sleeping past it.
int sqlite_store::on_busy(void* self, int count) {
  static constexpr int kStepsMs[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
  constexpr int kLast = static_cast<int>(std::size(kStepsMs)) - 1;
  const auto* s = static_cast<const sqlite_store*>(self);
  const int timeout = s->opts_.busy_timeout_ms;
  // What the earlier calls of this wait slept: the steps, then 100 ms each.
  int waited = 0;
  for (int i = 0; i < std::min(count, kLast); ++i) waited += kStepsMs[i];
  if (count > kLast) waited += (count - kLast) * kStepsMs[kLast];
  if (waited >= timeout) return 0;
  const auto step =
      s->give_up_.cap(std::chrono::milliseconds(std::min(kStepsMs[std::min(count, kLast)], timeout - waited)));
  if (step.count() == 0) return 0;
  std::this_thread::sleep_for(step);
  return 1;
}
sqlite_store::~sqlite_store() = default;

result<std::unique_ptr<sqlite_store::connection>> sqlite_store::connect(bool writer) const {
  auto c = std::make_unique<connection>();
  // The writer's WAL appends go through the write-buffering VFS
  // (wal_write_buffer.cc): about 2.5 pwrite calls per post become a few per
  // commit (one per 124 KiB). Only with FULL, where every commit syncs the WAL (and so writes
  // the buffer out) before the wal-index shows it to the readers; with
  // NORMAL no commit syncs, and the writer uses the default VFS.
  const char* vfs = writer && opts_.synchronous == "FULL" ? sqlite_wal::write_buffer_vfs_name() : nullptr;
  const int rc = sqlite3_open_v2(opts_.path.c_str(), &c->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, vfs);
  if (rc != SQLITE_OK)
    return error(errc::unavailable, fmt::format("cannot open {}: {}", opts_.path.string(),
                                                c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc)));
  sqlite3_busy_handler(c->db, &sqlite_store::on_busy, const_cast<sqlite_store*>(this));
  if (writer) {
    if (auto r = refuse_foreign(c->db); !r)
      return error(r.err().code, fmt::format("cannot open {}: {}", opts_.path.string(), r.err().message));
  }
  const auto pragmas = fmt::format("PRAGMA journal_mode=WAL; PRAGMA synchronous={}; PRAGMA foreign_keys=ON;",
                                   opts_.synchronous);
  if (auto r = c->exec(pragmas.c_str()); !r) return r.err();
  return c;
}

namespace {

// Process-wide settings, which SQLite takes only before it first initializes
// (the first open does that): when something in the process opened a
// database before the first store, SQLite refuses them and keeps its
// defaults, which is harmless.
void configure_sqlite_once() {
  static const bool done = [] {
    // Without memory statistics, each of SQLite's allocations and frees skips
    // a global mutex and a size lookup (Debian's build has no lookaside, so
    // every statement run makes several). Nothing here reads the statistics
    // or sets a heap limit, which needs them.
    const bool memstatus_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
    // Spares each commit a walk over the whole page cache (page_cache.cc).
    const bool layered = sqlite_page_cache::install();
    return memstatus_off && layered;
  }();
  (void)done;
}

}  // namespace

result<std::unique_ptr<sqlite_store>> sqlite_store::open(const sqlite_options& opts) {
  if (opts.synchronous != "FULL" && opts.synchronous != "NORMAL")
    return error(errc::invalid_input, "sqlite synchronous must be FULL or NORMAL");
  configure_sqlite_once();
  std::error_code ec;
  if (opts.path.has_parent_path()) std::filesystem::create_directories(opts.path.parent_path(), ec);
  if (ec) return error(errc::unavailable, fmt::format("cannot create {}: {}", opts.path.parent_path().string(), ec.message()));
  std::unique_ptr<sqlite_store> s(new sqlite_store(opts));
  auto owner = file_lock::take(opts.path.string() + ".lock");
  if (!owner) {
    return error(owner.err().code, fmt::format("cannot open {}: {}; one process per database (each feed-api needs "
                                               "its own --data-dir)",
                                               opts.path.string(), owner.err().message));
  }
  s->owner_ = std::move(*owner);
  auto in_use = file_lock::take_in_place(opts.path);
  if (!in_use && in_use.err().is(errc::invalid_input)) {
    return error(errc::invalid_input,
                 fmt::format("cannot open {}: another process has it open, though {}.lock was free (removed while "
                             "that process ran?); one process per database (each feed-api needs its own --data-dir)",
                             opts.path.string(), opts.path.string()));
  }
  if (!in_use) return error(in_use.err().code, fmt::format("cannot open {}: {}", opts.path.string(), in_use.err().message));
  s->in_use_ = std::move(*in_use);
  auto w = s->connect(/*writer=*/true);
  if (!w) return w.err();
  auto migrations = schema::collect_migrations(schema::sqlite_migration_files());
  if (!migrations) return migrations.err();
  sqlite_schema target((*w)->db);
  if (auto r = schema::migrate(target, *migrations); !r) return r.err();
  // The writer's page cache. Every insert descends the id and (user_id, seq)
  // indexes: with SQLite's default 2 MiB cache those leaves were read back
  // with pread for almost every row once the table outgrew it (about one
  // pread per post). The cache fills only as the database grows; the bound
  // keeps a large database from taking more. (Readers keep the default: their
  // pages come from the OS page cache, and they are not on the post path.)
  if (auto r = (*w)->exec("PRAGMA cache_size=-65536"); !r) return r.err();
  // Checkpoint every 10000 WAL pages (about 40 MiB) instead of SQLite's 1000.
  // A checkpoint copies the newest version of each page the WAL holds, and
  // the index leaves and table tail that every batch rewrites are mostly the
  // same pages: ten times fewer checkpoints copy (pread + pwrite + fsync of
  // the database file) far fewer pages per post. Durability is unchanged: a
  // commit is durable once its WAL frames are fsynced (synchronous=FULL),
  // checkpointed or not; the cost is a larger -wal file and a longer (rarer)
  // checkpoint, still run by the committing writer.
  if (auto r = (*w)->exec("PRAGMA wal_autocheckpoint=10000"); !r) return r.err();
  s->writer_ = std::move(*w);
  return s;
}

result<void> sqlite_store::write_status(std::chrono::milliseconds stall_limit) {
  if (auto r = writes_.status(stall_limit); !r) return r;
  // A commit appends its batch's pages to the WAL: hundreds of KiB for a
  // large batch. Under this, the next one may fail.
  constexpr std::uintmax_t min_free = 1024 * 1024;
  const auto dir = opts_.path.has_parent_path() ? opts_.path.parent_path() : std::filesystem::path(".");
  return check_free_space(dir, min_free);
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
  return connect(/*writer=*/false);
}

void sqlite_store::return_reader(std::unique_ptr<connection> c) {
  std::lock_guard lock(readers_mu_);
  if (readers_.size() < opts_.max_readers) readers_.push_back(std::move(c));
}

result<insert_report> sqlite_store::insert_batch(std::vector<message>& batch) {
  if (batch.empty()) return insert_report{};
  return writes_.track([&] {
    std::lock_guard lock(write_mu_);
    return insert_locked(batch);
  });
}

result<insert_report> sqlite_store::insert_locked(std::vector<message>& batch) {
  bool duplicates = false;
  auto fresh = insert_fresh(batch, duplicates);
  if (!duplicates) {
    if (!fresh) return fresh.err();
    return insert_report{{}, batch.size()};
  }
  std::size_t inserted = 0;
  auto stored = insert_each(batch, inserted);
  if (!stored) return stored.err();
  return insert_report{std::exchange(batch, std::move(*stored)), inserted};
}

namespace {

std::string insert_rows_sql(std::size_t rows) {
  std::string sql = "INSERT OR IGNORE INTO messages (id, user_id, content, created_at, seq) VALUES ";
  for (std::size_t i = 0; i < rows; ++i) sql += i ? ",(?,?,?,?,?)" : "(?,?,?,?,?)";
  return sql;
}

}  // namespace

// The common batch: every message is new. Its rows go in a few statements
// of up to 2^kRowsLog2 rows each instead of one statement per row: SQLite
// (Debian's is built without lookaside) allocates and frees its cursors and
// record buffers once per statement run, and each run pays the statement's
// setup. OR IGNORE means no row can abort the statement, so SQLite keeps no
// statement journal for it (a plain INSERT of many rows wrote one to a
// temporary file for every statement); the seqs are numbered
// on the assumption that no id is stored yet, and when fewer rows than
// bound went in (an id was stored already, or repeats within the batch),
// the transaction is rolled back, nothing of it committed, and `duplicates`
// is set: insert_each then stores the batch row by row, in a transaction of
// its own. Either way a batch is one commit and one WAL sync. Once the
// transaction commits, each message of `batch` gets its seq in place; the
// batch is untouched until then.
result<void> sqlite_store::insert_fresh(std::span<message> batch, bool& duplicates) {
  sqlite3* db = writer_->db;
  auto& c = *writer_;
  if (auto r = c.begin_write(); !r) return r.err();
  rollback_guard tx(rollback_of(db));
  const auto last = c.last_seq();
  if (!last) return last.err();
  if (auto r = c.index_users(*last, opts_.user_index_lag); !r) return r.err();
  const std::int64_t first = *last + 1;

  std::size_t done = 0;
  while (done < batch.size()) {
    std::size_t k = kRowsLog2;
    while ((std::size_t{1} << k) > batch.size() - done) --k;
    const std::size_t rows = std::size_t{1} << k;
    auto& stmt = c.insert_rows[k];
    if (!stmt) stmt = prepare(db, insert_rows_sql(rows));
    if (!stmt) return writer_->fail("prepare insert");
    sqlite3_stmt* const s = stmt.get();
    int p = 1;
    for (std::size_t i = done; i < done + rows; ++i) {
      const auto& m = batch[i];
      bind_text_static(s, p++, m.id);
      bind_text_static(s, p++, m.user_id);
      bind_text_static(s, p++, m.content);
      sqlite3_bind_int64(s, p++, m.created_at.time_since_epoch().count());
      sqlite3_bind_int64(s, p++, first + static_cast<std::int64_t>(i));
    }
    const int rc = sqlite3_step(s);
    const auto inserted = static_cast<std::size_t>(sqlite3_changes(db));
    // The bindings point into the batch's strings (SQLITE_STATIC).
    std::optional<error> e;
    if (rc != SQLITE_DONE) e = writer_->fail("insert");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (e) return *e;
    if (inserted != rows) {
      duplicates = true;
      return error(errc::storage, "a message of the batch is stored already");
    }
    done += rows;
  }
  if (auto r = c.commit_write(); !r) return r.err();
  tx.committed();
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i].seq = seq_t{first + static_cast<std::int64_t>(i)};
  return {};
}

// Row by row, each new message numbered as it goes in and each stored one
// read back: the path for batches holding ids that are stored already. The
// answer is a new vector (a copy of each new message, each stored one as
// read), so that the caller can keep the batch as given beside it.
result<std::vector<message>> sqlite_store::insert_each(std::span<const message> batch, std::size_t& inserted) {
  std::vector<message> out;
  out.reserve(batch.size());
  sqlite3* db = writer_->db;
  auto& c = *writer_;
  if (auto r = c.begin_write(); !r) return r.err();
  rollback_guard tx(rollback_of(db));

  if (!c.insert)
    c.insert = prepare(db,
                       "INSERT INTO messages (id, user_id, content, created_at, seq) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (id) DO NOTHING");
  if (!c.existing) c.existing = prepare(db, "SELECT id, user_id, content, created_at, seq FROM messages WHERE id = ?");
  if (!c.insert || !c.existing) return writer_->fail("prepare insert");
  // Reset on every exit path: a statement left mid-step would keep its read
  // transaction (and the WAL snapshot) open after this batch. The bindings
  // are cleared too: they point into this batch's strings (SQLITE_STATIC).
  struct reset_all {
    connection& c;
    ~reset_all() {
      sqlite3_reset(c.insert.get()), sqlite3_reset(c.existing.get());
      sqlite3_clear_bindings(c.insert.get()), sqlite3_clear_bindings(c.existing.get());
    }
  } resets{c};
  sqlite3_stmt* const insert = c.insert.get();
  sqlite3_stmt* const existing = c.existing.get();

  auto stored_last = c.last_seq();
  if (!stored_last) return stored_last.err();
  if (auto r = c.index_users(*stored_last, opts_.user_index_lag); !r) return r.err();
  std::int64_t last = *stored_last;
  for (const auto& m : batch) {
    sqlite3_reset(insert);
    bind_text_static(insert, 1, m.id);
    bind_text_static(insert, 2, m.user_id);
    bind_text_static(insert, 3, m.content);
    sqlite3_bind_int64(insert, 4, m.created_at.time_since_epoch().count());
    sqlite3_bind_int64(insert, 5, last + 1);
    if (sqlite3_step(insert) != SQLITE_DONE) return writer_->fail("insert");
    if (sqlite3_changes(db) == 1) {
      out.push_back(m);
      out.back().seq = seq_t{++last};
      continue;
    }
    sqlite3_reset(existing);
    bind_text_static(existing, 1, m.id);
    if (sqlite3_step(existing) != SQLITE_ROW) return writer_->fail("read existing");
    out.push_back(row_to_message(existing));
    sqlite3_reset(existing);
  }
  if (auto r = c.commit_write(); !r) return r.err();
  tx.committed();
  inserted = static_cast<std::size_t>(last - *stored_last);
  std::sort(out.begin(), out.end(), [](const message& a, const message& b) { return a.seq < b.seq; });
  return out;
}

namespace {

// Appends the rows of `s` (columns as row_to_message reads them) to `out`.
bool step_rows(sqlite3_stmt* s, std::vector<message>& out) {
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(row_to_message(s));
  return rc == SQLITE_DONE;
}

}  // namespace

result<std::vector<message>> sqlite_store::read(const read_query& q) {
  auto c = take_reader();
  if (!c) return c.err();
  if (q.user_id) {
    auto rows = read_user(**c, q);
    if (rows) return_reader(std::move(*c));
    return rows;
  }
  std::string sql = "SELECT id, user_id, content, created_at, seq FROM messages WHERE seq > ?";
  if (q.up_to) sql += " AND seq <= ?";
  sql += q.newest_first ? " ORDER BY seq DESC LIMIT ?" : " ORDER BY seq LIMIT ?";
  auto s = prepare((*c)->db, sql);
  if (!s) return (*c)->fail("prepare read");
  int i = 1;
  sqlite3_bind_int64(s.get(), i++, q.after.value());
  if (q.up_to) sqlite3_bind_int64(s.get(), i++, q.up_to->value());
  sqlite3_bind_int64(s.get(), i++, static_cast<std::int64_t>(q.limit));
  std::vector<message> out;
  if (!step_rows(s.get(), out)) return (*c)->fail("read");
  s.reset();
  return_reader(std::move(*c));
  return out;
}

// Two parts, split at the table's bound (messages_by_user_through): up to
// it the rows are found through messages_by_user, above it by scanning
// the messages past the bound, which the writer keeps to a few thousand.
// One read transaction holds both, so the bound and the rows are of one
// commit. Each part is ordered and limited by itself; the scan's rows are
// all newer than the table's, so newest first reads the scan first, oldest
// first the table first, and the second part only tops up.
result<std::vector<message>> sqlite_store::read_user(connection& c, const read_query& q) {
  if (auto r = c.exec("BEGIN"); !r) return r.err();
  struct end_read {
    sqlite3* db;
    ~end_read() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
  } ends{c.db};
  std::int64_t through = 0;
  {
    auto s = prepare(c.db, "SELECT seq FROM messages_by_user_through");
    if (!s || sqlite3_step(s.get()) != SQLITE_ROW) return c.fail("read user index bound");
    through = sqlite3_column_int64(s.get(), 0);
  }
  const std::int64_t after = q.after.value();
  const std::int64_t up_to = q.up_to ? q.up_to->value() : std::numeric_limits<std::int64_t>::max();
  const char* order = q.newest_first ? " DESC" : "";
  const auto limit = static_cast<std::int64_t>(q.limit);
  std::vector<message> out;

  auto scan_past = [&](std::int64_t n) -> result<void> {
    const std::int64_t from = std::max(after, through);
    if (n <= 0 || from >= up_to) return {};
    auto s = prepare(c.db, fmt::format("SELECT id, user_id, content, created_at, seq FROM messages "
                                       "WHERE seq > ?1 AND seq <= ?2 AND user_id = ?3 ORDER BY seq{} LIMIT ?4",
                                       order));
    if (!s) return c.fail("prepare read");
    sqlite3_bind_int64(s.get(), 1, from);
    sqlite3_bind_int64(s.get(), 2, up_to);
    bind_text(s.get(), 3, *q.user_id);
    sqlite3_bind_int64(s.get(), 4, n);
    if (!step_rows(s.get(), out)) return c.fail("read");
    return {};
  };
  // CROSS JOIN keeps messages_by_user the outer loop: the messages are
  // then found by seq, their key.
  auto look_up = [&](std::int64_t n) -> result<void> {
    const std::int64_t to = std::min(up_to, through);
    if (n <= 0 || after >= to) return {};
    auto s = prepare(c.db, fmt::format("SELECT m.id, m.user_id, m.content, m.created_at, m.seq "
                                       "FROM messages_by_user u CROSS JOIN messages m ON m.seq = u.seq "
                                       "WHERE u.user_id = ?1 AND u.seq > ?2 AND u.seq <= ?3 ORDER BY u.seq{} LIMIT ?4",
                                       order));
    if (!s) return c.fail("prepare read");
    bind_text(s.get(), 1, *q.user_id);
    sqlite3_bind_int64(s.get(), 2, after);
    sqlite3_bind_int64(s.get(), 3, to);
    sqlite3_bind_int64(s.get(), 4, n);
    if (!step_rows(s.get(), out)) return c.fail("read");
    return {};
  };
  auto rest = [&] { return limit - static_cast<std::int64_t>(out.size()); };
  if (q.newest_first) {
    if (auto r = scan_past(limit); !r) return r.err();
    if (auto r = look_up(rest()); !r) return r.err();
  } else {
    if (auto r = look_up(limit); !r) return r.err();
    if (auto r = scan_past(rest()); !r) return r.err();
  }
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

result<std::int64_t> sqlite_store::read_int64(const char* sql, std::string_view what) {
  auto c = take_reader();
  if (!c) return c.err();
  auto s = prepare((*c)->db, sql);
  if (!s || sqlite3_step(s.get()) != SQLITE_ROW) return (*c)->fail(what);
  const std::int64_t v = sqlite3_column_int64(s.get(), 0);
  s.reset();
  return_reader(std::move(*c));
  return v;
}

result<seq_t> sqlite_store::max_seq() {
  auto v = read_int64("SELECT COALESCE(MAX(seq), 0) FROM messages", "max seq");
  if (!v) return v.err();
  return seq_t{*v};
}

result<void> sqlite_store::ping() {
  auto v = max_seq();
  if (!v) return v.err();
  return {};
}

std::string sqlite_store::writer_vfs() {
  std::lock_guard lock(write_mu_);
  sqlite3_vfs* vfs = nullptr;
  if (sqlite3_file_control(writer_->db, "main", SQLITE_FCNTL_VFS_POINTER, &vfs) != SQLITE_OK || !vfs) return {};
  return vfs->zName;
}

result<std::int64_t> sqlite_store::schema_version() {
  return read_int64("SELECT version FROM schema_migrations LIMIT 1", "schema version");
}

}  // namespace feed
