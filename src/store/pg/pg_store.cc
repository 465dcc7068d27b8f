#include "store/pg/pg_store.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "base/log.h"
#include "store/migration.h"
#include "store/pg/pg_migrate.h"
#include "store/pg/pg_migrations.h"

namespace feed {

namespace {

// Every statement returns binary results: exact microseconds for
// TIMESTAMPTZ, and no dependence on the session's DateStyle or TimeZone.
const pg_statement lock_seq{"feed_lock_seq", "SELECT last_seq FROM feed_sequence WHERE id = 1 FOR UPDATE"};
const pg_statement select_existing{
    "feed_select_existing",
    "SELECT id, user_id, content, created_at, seq FROM messages WHERE id = ANY($1::UUID[])"};
const pg_statement insert_rows{
    "feed_insert_rows",
    "INSERT INTO messages (id, user_id, content, created_at, seq) "
    "SELECT * FROM unnest($1::UUID[], $2::TEXT[], $3::TEXT[], $4::TIMESTAMPTZ[], $5::BIGINT[]) "
    "ON CONFLICT (id) DO NOTHING"};
const pg_statement advance_seq{"feed_advance_seq", "UPDATE feed_sequence SET last_seq = $1::BIGINT WHERE id = 1"};
const pg_statement select_max_seq{"feed_max_seq", "SELECT COALESCE(MAX(seq), 0) FROM messages"};

// PostgreSQL's binary TIMESTAMPTZ counts microseconds from 2000-01-01 UTC.
constexpr std::int64_t pg_epoch_offset_us = 946'684'800'000'000;

std::int64_t big_endian(std::string_view v) {
  std::uint64_t x = 0;
  for (unsigned char c : v) x = (x << 8) | c;
  return static_cast<std::int64_t>(x);
}

std::optional<std::int64_t> int8_value(const pg_rows& rows, int row, int col) {
  const auto v = rows.value(row, col);
  if (v.size() != 8) return std::nullopt;
  return big_endian(v);
}

std::string uuid_text(std::string_view v) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    const auto b = static_cast<unsigned char>(v[i]);
    out += hex[b >> 4];
    out += hex[b & 0xf];
  }
  return out;
}

// The 8-4-4-4-12 hex form in lower case, or nothing when `id` is not a UUID.
// Ids are compared in this form, as the database compares UUIDs by value.
std::optional<std::string> canonical_uuid(std::string_view id) {
  if (id.size() != 36) return std::nullopt;
  std::string out(id);
  for (std::size_t i = 0; i < out.size(); ++i) {
    char& c = out[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return std::nullopt;
    } else if (c >= 'A' && c <= 'F') {
      c = static_cast<char>(c - 'A' + 'a');
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return std::nullopt;
    }
  }
  return out;
}

// Columns id, user_id, content, created_at, seq in binary form.
result<message> row_to_message(const pg_rows& rows, int row) {
  message m;
  const auto id = rows.value(row, 0);
  const auto created = int8_value(rows, row, 3);
  const auto seq = int8_value(rows, row, 4);
  if (id.size() != 16 || !seq || (!created && !rows.is_null(row, 3)))
    return error(errc::corrupt, "postgres: a messages row does not have the expected column types");
  m.id = uuid_text(id);
  m.user_id = rows.value(row, 1);
  m.content = rows.value(row, 2);
  // The reference's table allows NULL created_at; read it as the epoch.
  if (created) m.created_at = timestamp(std::chrono::microseconds(*created + pg_epoch_offset_us));
  m.seq = seq_t{*seq};
  return m;
}

result<std::vector<message>> rows_to_messages(const pg_rows& rows) {
  std::vector<message> out;
  out.reserve(static_cast<std::size_t>(rows.rows()));
  for (int i = 0; i < rows.rows(); ++i) {
    auto m = row_to_message(rows, i);
    if (!m) return m.err();
    out.push_back(std::move(*m));
  }
  return out;
}

// A PostgreSQL array literal: {"a","b"} with " and \ escaped, so any text
// (commas, braces, the word NULL) survives as one element.
class array_literal {
 public:
  void add(std::string_view v) {
    text_ += text_.empty() ? '{' : ',';
    text_ += '"';
    for (char c : v) {
      if (c == '"' || c == '\\') text_ += '\\';
      text_ += c;
    }
    text_ += '"';
  }
  std::string str() const { return text_.empty() ? "{}" : text_ + '}'; }

 private:
  std::string text_;
};

// Rolls back unless committed, so every early return leaves the connection
// outside a transaction (and fit to go back to the pool).
class transaction {
 public:
  explicit transaction(pg_connection& c) : c_(&c) {}
  ~transaction() {
    if (c_) c_->rollback();
  }
  result<void> commit() {
    auto r = c_->exec("commit", "COMMIT");
    if (!r) return r.err();
    c_ = nullptr;
    return {};
  }

 private:
  pg_connection* c_;
};

// The batch without repeated ids (first occurrence wins), ids canonical.
struct prepared_batch {
  std::vector<message> unique;
  std::vector<std::string> ids;  // canonical id of each input message, by position
};

result<prepared_batch> prepare_batch(std::span<const message> batch) {
  prepared_batch p;
  p.ids.reserve(batch.size());
  std::unordered_map<std::string, std::size_t> seen;
  for (const auto& m : batch) {
    auto id = canonical_uuid(m.id);
    if (!id) return error(errc::invalid_input, fmt::format("postgres: message id \"{}\" is not a UUID", m.id));
    if (m.user_id.find('\0') != std::string::npos || m.content.find('\0') != std::string::npos)
      return error(errc::invalid_input, fmt::format("postgres: message {} contains a NUL byte", *id));
    if (seen.emplace(*id, p.unique.size()).second) {
      p.unique.push_back(m);
      p.unique.back().id = *id;
    }
    p.ids.push_back(std::move(*id));
  }
  return p;
}

// One attempt: lock the counter, look up the ids already stored, insert the
// rest with the next seqs, advance the counter, commit.
result<std::vector<message>> insert_once(pg_connection& c, const prepared_batch& batch) {
  if (auto r = c.exec("begin", "BEGIN"); !r) return r.err();
  transaction tx(c);

  // Taken first: every statement below (each with a fresh snapshot under
  // READ COMMITTED) sees all batches committed before ours.
  auto locked = c.run(lock_seq, {});
  if (!locked) return locked.err();
  if (locked->rows() != 1)
    return error(errc::storage, "postgres: feed_sequence has no row 1 (is migration 2 applied?)");
  auto last = int8_value(*locked, 0, 0);
  if (!last) return error(errc::corrupt, "postgres: feed_sequence.last_seq is not a BIGINT");

  array_literal all_ids;
  for (const auto& m : batch.unique) all_ids.add(m.id);
  auto existing_rows = c.run(select_existing, {all_ids.str()});
  if (!existing_rows) return existing_rows.err();
  auto existing = rows_to_messages(*existing_rows);
  if (!existing) return existing.err();

  std::unordered_map<std::string_view, const message*> stored;
  for (const auto& m : *existing) stored.emplace(m.id, &m);

  std::vector<message> fresh;
  array_literal ids, users, contents, times, seqs;
  for (const auto& m : batch.unique) {
    if (stored.contains(m.id)) continue;
    fresh.push_back(m);
    fresh.back().seq = seq_t{++*last};
    ids.add(m.id);
    users.add(m.user_id);
    contents.add(m.content);
    times.add(format_rfc3339(m.created_at));
    seqs.add(std::to_string(*last));
  }
  if (!fresh.empty()) {
    auto inserted = c.run(insert_rows, {ids.str(), users.str(), contents.str(), times.str(), seqs.str()});
    if (!inserted) return inserted.err();
    // Under the counter lock no other writer can have stored these ids; a
    // shortfall means someone writes messages without taking the lock, and
    // committing would leave holes.
    if (inserted->affected() != static_cast<std::int64_t>(fresh.size()))
      return error(errc::storage, fmt::format("postgres: inserted {} of {} new messages; is another writer "
                                              "bypassing feed_sequence?",
                                              inserted->affected(), fresh.size()));
    auto advanced = c.run(advance_seq, {std::to_string(*last)});
    if (!advanced) return advanced.err();
  }
  if (auto r = tx.commit(); !r) return r.err();

  for (const auto& m : fresh) stored.emplace(m.id, &m);
  std::vector<message> out;
  out.reserve(batch.ids.size());
  for (const auto& id : batch.ids) out.push_back(*stored.at(id));
  std::stable_sort(out.begin(), out.end(), [](const message& a, const message& b) { return a.seq < b.seq; });
  return out;
}

pg_connect_options connect_options(const pg_options& o) {
  return pg_connect_options{o.url, o.connect_timeout, o.statement_timeout};
}

bool serialization_failure(const pg_connection& c) {
  return c.last_sqlstate() == "40001" || c.last_sqlstate() == "40P01";
}

}  // namespace

pg_store::pg_store(const pg_options& opts)
    : opts_(opts), pool_(connect_options(opts), opts.pool_size, opts.acquire_timeout) {}

result<std::unique_ptr<pg_store>> pg_store::open(const pg_options& opts) {
  if (opts.pool_size == 0) return error(errc::invalid_input, "postgres: pool_size must be at least 1");
  auto migrations = schema::collect_migrations(schema::pg_migration_files());
  if (!migrations) return migrations.err();
  auto version = migrate_pg(connect_options(opts), *migrations);
  if (!version) return version.err();
  spdlog::info("postgres: schema at version {}", *version);
  return std::unique_ptr<pg_store>(new pg_store(opts));
}

template <class F>
auto pg_store::with_connection(F&& f) -> decltype(f(std::declval<pg_connection&>())) {
  for (std::size_t attempt = 1;; ++attempt) {
    auto lease = pool_.acquire();
    if (!lease) return lease.err();
    pg_connection& c = **lease;
    auto r = f(c);
    // A connection that the server closed while it sat in the pool fails its
    // first statement; that says nothing about the database now, so try
    // again (each idle connection may be stale, hence the bound).
    if (r || !lease->reused() || c.healthy() || attempt > pool_.size()) return r;
    spdlog::warn("postgres: a pooled connection was closed by the server ({}); retrying on another",
                 r.err().message);
  }
}

result<std::vector<message>> pg_store::insert_batch(std::span<const message> batch) {
  if (batch.empty()) return std::vector<message>{};
  auto prepared = prepare_batch(batch);
  if (!prepared) return prepared.err();
  return with_connection([&](pg_connection& c) -> result<std::vector<message>> {
    std::minstd_rand jitter(std::random_device{}());
    const int attempts = std::max(opts_.max_tx_attempts, 1);
    for (int attempt = 1;; ++attempt) {
      auto r = insert_once(c, *prepared);
      if (r || !serialization_failure(c)) return r;
      if (attempt >= attempts)
        return error(errc::unavailable, fmt::format("postgres: insert_batch gave up after {} serialization "
                                                    "failures: {}",
                                                    attempts, r.err().message));
      // Back off a little, with jitter, so the conflicting writers do not
      // collide again in lockstep.
      const auto base = std::min(2 << attempt, 200);
      std::this_thread::sleep_for(std::chrono::milliseconds(base / 2 + static_cast<int>(jitter() % base)));
    }
  });
}

result<std::vector<message>> pg_store::read(const read_query& q) {
  // One prepared statement per shape, so each keeps a plan that uses the
  // right index.
  std::string name = "feed_read";
  std::string sql = "SELECT id, user_id, content, created_at, seq FROM messages WHERE seq > $1::BIGINT";
  std::vector<std::string> params{std::to_string(q.after.value())};
  if (q.up_to) {
    params.push_back(std::to_string(q.up_to->value()));
    sql += fmt::format(" AND seq <= ${}::BIGINT", params.size());
    name += "_upto";
  }
  if (q.user_id) {
    if (q.user_id->find('\0') != std::string::npos)
      return error(errc::invalid_input, "postgres: user_id contains a NUL byte");
    params.push_back(*q.user_id);
    sql += fmt::format(" AND user_id = ${}::TEXT", params.size());
    name += "_user";
  }
  const auto limit = std::min<std::size_t>(q.limit, std::numeric_limits<std::int64_t>::max());
  params.push_back(std::to_string(limit));
  sql += fmt::format(" ORDER BY seq{} LIMIT ${}::BIGINT", q.newest_first ? " DESC" : "", params.size());
  if (q.newest_first) name += "_desc";
  const pg_statement stmt{std::move(name), std::move(sql)};

  return with_connection([&](pg_connection& c) -> result<std::vector<message>> {
    auto rows = c.run(stmt, params);
    if (!rows) return rows.err();
    return rows_to_messages(*rows);
  });
}

result<seq_t> pg_store::max_seq() {
  return with_connection([&](pg_connection& c) -> result<seq_t> {
    auto rows = c.run(select_max_seq, {});
    if (!rows) return rows.err();
    const auto v = rows->rows() == 1 ? int8_value(*rows, 0, 0) : std::nullopt;
    if (!v) return error(errc::corrupt, "postgres: MAX(seq) is not a BIGINT");
    return seq_t{*v};
  });
}

result<void> pg_store::ping() {
  return with_connection([&](pg_connection& c) -> result<void> {
    auto r = c.exec("ping", "SELECT 1");
    if (!r) return r.err();
    return {};
  });
}

result<std::int64_t> pg_store::schema_version() {
  return with_connection([&](pg_connection& c) -> result<std::int64_t> {
    auto rows = c.exec("schema version", "SELECT version FROM schema_migrations LIMIT 1");
    if (!rows) return rows.err();
    if (rows->rows() != 1) return error(errc::storage, "postgres: schema_migrations is empty");
    std::int64_t v = 0;
    const auto text = rows->value(0, 0);
    if (std::from_chars(text.data(), text.data() + text.size(), v).ec != std::errc{})
      return error(errc::corrupt, "postgres: schema_migrations.version is not a number");
    return v;
  });
}

}  // namespace feed
