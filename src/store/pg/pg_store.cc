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
#include "model/message_id.h"
#include "store/migration.h"
#include "store/pg/pg_migrate.h"
#include "store/pg/pg_migrations.h"
#include "store/pg/pg_wire.h"
#include "store/rollback_guard.h"

namespace feed {

namespace {

// How long the calls still running at the stop deadline get to end by
// their cancel before their connections are closed under them.
constexpr std::chrono::milliseconds kCancelGrace{100};

// A batch's transaction opens and takes the counter's lock in one round
// trip: two statements in one simple query, which runs them in order and
// answers with the last one's rows (in text: the simple protocol has no
// binary results). Both are fixed text, so nothing is spliced in.
const std::string begin_and_lock_seq = "BEGIN; SELECT last_seq FROM feed_sequence WHERE id = 1 FOR UPDATE";
// Every prepared statement returns binary results: exact microseconds for
// TIMESTAMPTZ, and no dependence on the session's DateStyle or TimeZone.
const pg_statement select_existing{
    "feed_select_existing",
    "SELECT id, user_id, content, created_at, seq FROM messages WHERE id = ANY($1::UUID[])"};
// One statement stores the whole batch with the seqs after $5, in batch
// order. Parameters are binary arrays (pg_wire.h), so no row is formatted or
// parsed as text on either side. insert_all assumes every id is new (the
// primary key refuses a stored one, 23505, and the batch is tried again with
// insert_fresh); insert_fresh looks each id up first and numbers only the
// new ones, which costs the database a second index search per row.
const std::string batch_input =
    "SELECT * FROM unnest($1::UUID[], $2::TEXT[], $3::TEXT[], $4::TIMESTAMPTZ[])"
    " WITH ORDINALITY AS t(id, user_id, content, created_at, ord)";
const pg_statement insert_all{
    "feed_insert_all",
    "INSERT INTO messages (id, user_id, content, created_at, seq) "
    "SELECT id, user_id, content, created_at, $5::BIGINT + ord FROM (" + batch_input + ") AS input"};
const pg_statement insert_fresh{
    "feed_insert_fresh",
    "WITH input AS (" + batch_input + "), "
    "fresh AS (SELECT * FROM input WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = input.id)) "
    "INSERT INTO messages (id, user_id, content, created_at, seq) "
    "SELECT id, user_id, content, created_at, $5::BIGINT + row_number() OVER (ORDER BY ord) FROM fresh"};
// The counter's advance and the commit, in one round trip likewise: the
// value is a number this process formats, the only thing spliced into SQL.
std::string advance_seq_and_commit(std::int64_t last_seq) {
  return fmt::format("UPDATE feed_sequence SET last_seq = {} WHERE id = 1; COMMIT", last_seq);
}
const pg_statement select_one{"feed_select_one",
                              "SELECT id, user_id, content, created_at, seq FROM messages WHERE id = $1::UUID"};
const pg_statement select_max_seq{"feed_max_seq", "SELECT COALESCE(MAX(seq), 0) FROM messages"};

std::optional<std::int64_t> int8_value(const pg_rows& rows, int row, int col) {
  return pg_wire::int8_value(rows.value(row, col));
}

// A BIGINT in the text form, as the simple protocol returns it.
std::optional<std::int64_t> int8_text(const pg_rows& rows, int row, int col) {
  const std::string_view v = rows.value(row, col);
  std::int64_t out = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size()) return std::nullopt;
  return out;
}

// The 8-4-4-4-12 hex form in lower case, or nothing when `id` is not a UUID.
// Ids are compared in this form, as the database compares UUIDs by value.
std::optional<std::string> canonical_uuid(std::string_view id) {
  if (!is_uuid_text(id)) return std::nullopt;
  std::string out(id);
  for (char& c : out)
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Columns id, user_id, content, created_at, seq in binary form.
result<message> row_to_message(const pg_rows& rows, int row) {
  auto id = pg_wire::uuid_text(rows.value(row, 0));
  const auto created = pg_wire::timestamp_value(rows.value(row, 3));
  const auto seq = int8_value(rows, row, 4);
  if (!id || !seq || (!created && !rows.is_null(row, 3)))
    return error(errc::corrupt, "postgres: a messages row does not have the expected column types");
  message m;
  m.id = std::move(*id);
  m.user_id = rows.value(row, 1);
  m.content = rows.value(row, 2);
  // The reference's table allows NULL created_at; read it as the epoch.
  if (created) m.created_at = *created;
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

// Whether `id` is already in canonical_uuid's form, as the ids this
// service makes are: then it is used as it is, without a copy.
bool is_canonical_uuid(std::string_view id) {
  if (id.size() != 36) return false;
  for (std::size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

// The batch without repeated ids (first occurrence wins), ids canonical, and
// already in the binary parameters of insert_all and insert_fresh.
struct prepared_batch {
  std::span<const message> input;
  std::vector<std::size_t> unique;  // input position of each distinct id, in batch order
  std::vector<std::size_t> slot;    // for each input position, its index in `unique`
  bool repeats = false;             // some id occurs twice (else unique[i] == slot[i] == i)
  // Canonical id of each distinct message: a view of the input's id, or of
  // `converted` for an id that was not canonical.
  std::vector<std::string_view> ids;
  std::vector<std::string> converted;  // reserved once, so views into it stay valid
  // ids, users, contents, times, and the seq before the batch (set by each
  // attempt): the batch is encoded once however often it is tried.
  std::vector<pg_param> params;
};

result<prepared_batch> prepare_batch(std::span<const message> batch) {
  // No allocation per message on the store stage's thread: ids are checked
  // in place, and repeats are found by sorting positions rather than with a
  // map of copied ids (two allocations per message).
  prepared_batch p;
  p.input = batch;
  const std::size_t count = batch.size();
  std::vector<std::string_view> canonical(count);
  for (std::size_t i = 0; i < count; ++i) {
    const message& m = batch[i];
    if (auto why = unstorable_reason(m); !why.empty()) return error(errc::invalid_input, "postgres: " + why);
    if (is_canonical_uuid(m.id)) {
      canonical[i] = m.id;
    } else {
      if (p.converted.capacity() == 0) p.converted.reserve(count);
      canonical[i] = p.converted.emplace_back(*canonical_uuid(m.id));
    }
  }

  // Positions by id, and within one id by position: the first of each run is
  // the occurrence that wins.
  std::vector<std::size_t> order(count);
  for (std::size_t i = 0; i < count; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const int c = canonical[a].compare(canonical[b]);
    return c < 0 || (c == 0 && a < b);
  });
  for (std::size_t k = 1; k < count && !p.repeats; ++k) p.repeats = canonical[order[k]] == canonical[order[k - 1]];

  p.unique.reserve(count);
  p.slot.reserve(count);
  p.ids.reserve(count);
  std::size_t text_bytes = 0;
  if (!p.repeats) {
    for (std::size_t i = 0; i < count; ++i) {
      p.unique.push_back(i);
      p.slot.push_back(i);
      p.ids.push_back(canonical[i]);
      text_bytes += batch[i].content.size();
    }
  } else {
    std::vector<std::size_t> first(count);  // the winning position for each position
    for (std::size_t k = 0; k < count; ++k)
      first[order[k]] = k > 0 && canonical[order[k]] == canonical[order[k - 1]] ? first[order[k - 1]] : order[k];
    for (std::size_t i = 0; i < count; ++i) {
      if (first[i] == i) {
        p.slot.push_back(p.unique.size());
        p.unique.push_back(i);
        p.ids.push_back(canonical[i]);
        text_bytes += batch[i].content.size();
      } else {
        p.slot.push_back(p.slot[first[i]]);
      }
    }
  }

  const std::size_t n = p.unique.size();
  pg_wire::array_builder ids(pg_wire::oid_uuid, n * 20);
  pg_wire::array_builder users(pg_wire::oid_text, n * 16);
  pg_wire::array_builder contents(pg_wire::oid_text, text_bytes + n * 4);
  pg_wire::array_builder times(pg_wire::oid_timestamptz, n * 12);
  for (std::size_t u = 0; u < n; ++u) {
    const message& m = batch[p.unique[u]];
    ids.add_uuid(p.ids[u]);
    users.add_text(m.user_id);
    contents.add_text(m.content);
    times.add_timestamp(m.created_at);
  }
  p.params.reserve(5);
  for (auto* a : {&ids, &users, &contents, &times}) p.params.push_back({a->finish(), pg_format::binary});
  p.params.push_back({"", pg_format::text});
  return p;
}

bool unique_violation(const pg_connection& c) { return c.last_sqlstate() == "23505"; }

// One attempt: lock the counter, insert the ids not stored yet with the next
// seqs, advance the counter, commit. `all_new`: take the fast statement that
// assumes no id is stored yet (a stored one fails it with 23505). `prepared`
// is `batch` encoded; `batch` becomes the batch as stored once the
// transaction commits, and is untouched before.
result<insert_report> insert_once(pg_connection& c, prepared_batch& prepared, std::vector<message>& batch,
                                  bool all_new) {
  // Every early return leaves the connection outside a transaction, fit to
  // go back to the pool (the guard's ROLLBACK does nothing when BEGIN
  // itself failed).
  rollback_guard tx([&c] { c.rollback(); });

  // The lock is taken first: every statement below (each with a fresh
  // snapshot under READ COMMITTED) sees all batches committed before ours.
  auto locked = c.exec("begin and lock feed_sequence", begin_and_lock_seq);
  if (!locked) return locked.err();
  if (locked->rows() != 1)
    return error(errc::storage, "postgres: feed_sequence has no row 1 (is migration 2 applied?)");
  const auto last = int8_text(*locked, 0, 0);
  if (!last) return error(errc::corrupt, "postgres: feed_sequence.last_seq is not a BIGINT");

  prepared.params.back().value = std::to_string(*last);
  auto inserted = c.run_typed(all_new ? insert_all : insert_fresh, prepared.params);
  if (!inserted) return inserted.err();
  const auto fresh_count = inserted->affected();
  const auto unique_count = static_cast<std::int64_t>(prepared.unique.size());
  if (fresh_count < 0 || fresh_count > unique_count)
    return error(errc::storage, fmt::format("postgres: stored {} rows for {} messages", fresh_count, unique_count));

  // The counter moves only past seqs this batch took.
  const auto commit = [&]() -> result<void> {
    auto done = fresh_count == 0
                    ? c.exec("commit", "COMMIT")
                    : c.exec("advance feed_sequence and commit", advance_seq_and_commit(*last + fresh_count));
    if (!done) return done.err();
    return {};
  };

  // Usually every message is new and took the seqs after `last` in batch
  // order: the answer is the batch itself, numbered in place (an id that
  // was not canonical is replaced by its canonical form, which lives in
  // prepared.converted, not in the message). Otherwise (a redelivered
  // batch) read the whole batch back, our rows included, to learn which seq
  // each id has.
  if (fresh_count == unique_count && !prepared.repeats) {
    if (auto r = commit(); !r) return r.err();
    tx.committed();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      message& m = batch[i];
      if (m.id != prepared.ids[i]) m.id = prepared.ids[i];
      m.seq = seq_t{*last + static_cast<std::int64_t>(i) + 1};
    }
    return insert_report{{}, batch.size()};
  }
  std::vector<message> stored;
  stored.reserve(prepared.unique.size());
  if (fresh_count == unique_count) {
    for (std::size_t u = 0; u < prepared.unique.size(); ++u) {
      stored.push_back(prepared.input[prepared.unique[u]]);
      stored.back().id = prepared.ids[u];
      stored.back().seq = seq_t{*last + static_cast<std::int64_t>(u) + 1};
    }
  } else {
    auto rows = c.run_typed(select_existing, std::span(prepared.params).first(1));
    if (!rows) return rows.err();
    auto found = rows_to_messages(*rows);
    if (!found) return found.err();
    std::unordered_map<std::string_view, message*> by_id;
    for (auto& m : *found) by_id.emplace(m.id, &m);
    for (const std::string_view id : prepared.ids) {
      auto it = by_id.find(id);
      // Under the counter lock nobody else stores messages; a missing row
      // means a writer bypasses feed_sequence, and committing could leave
      // holes.
      if (it == by_id.end())
        return error(errc::storage, fmt::format("postgres: message {} was neither stored nor found; is another "
                                                "writer bypassing feed_sequence?", id));
      stored.push_back(std::move(*it->second));
    }
  }
  if (auto r = commit(); !r) return r.err();
  tx.committed();

  std::vector<message> out;
  out.reserve(prepared.slot.size());
  for (std::size_t s : prepared.slot) out.push_back(stored[s]);
  std::stable_sort(out.begin(), out.end(), [](const message& a, const message& b) { return a.seq < b.seq; });
  // `prepared` views `batch`'s messages: it is not used past this point.
  return insert_report{std::exchange(batch, std::move(out)), static_cast<std::size_t>(fresh_count)};
}

pg_connect_options connect_options(const pg_options& o, const std::atomic<bool>* abandon = nullptr) {
  pg_connect_options c{o.url, o.connect_timeout, o.statement_timeout};
  c.answer_timeout = o.answer_timeout;
  c.abandon = abandon;
  return c;
}

bool serialization_failure(const pg_connection& c) {
  return c.last_sqlstate() == "40001" || c.last_sqlstate() == "40P01";
}

}  // namespace

pg_store::pg_store(const pg_options& opts)
    : opts_(opts), pool_(connect_options(opts, &past_deadline_), opts.pool_size, opts.acquire_timeout) {}

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
    // Past the stop deadline nothing waits for the server any more: a new
    // connection to one that hangs would wait out the connect timeout.
    if (past_deadline_) return error(errc::shutting_down, "postgres: the stop deadline passed; no more calls");
    auto lease = pool_.acquire();
    if (!lease) return lease.err();
    pg_connection& c = **lease;
    // Known to stop_waiting_at's timer while it runs, to be cancelled.
    pg_canceller* const canceller = c.canceller();
    {
      std::lock_guard lock(stop_mu_);
      if (past_deadline_) return error(errc::shutting_down, "postgres: the stop deadline passed; no more calls");
      if (canceller) busy_.push_back(canceller);
    }
    struct forget {
      pg_store& s;
      pg_canceller* c;
      ~forget() {
        if (!c) return;
        {
          std::lock_guard lock(s.stop_mu_);
          std::erase(s.busy_, c);
        }
        s.stop_cv_.notify_all();
      }
    };
    auto r = [&] {
      const forget registered{*this, canceller};
      return f(c);
    }();
    // A connection that the server closed while it sat in the pool fails its
    // first statement; that says nothing about the database now, so try
    // again (each idle connection may be stale, hence the bound). Not after
    // a timeout: the server is there, and slow or hung.
    if (r || !lease->reused() || c.healthy() || attempt > pool_.size() || r.err().is(errc::timeout) ||
        past_deadline_)
      return r;
    spdlog::warn("postgres: a pooled connection was closed by the server ({}); retrying on another",
                 r.err().message);
  }
}

result<insert_report> pg_store::insert_batch(std::vector<message>& batch) {
  if (batch.empty()) return insert_report{};
  return writes_.track([&] { return insert_prepared(batch); });
}

pg_store::~pg_store() {
  {
    std::lock_guard lock(stop_mu_);
    closing_ = true;
  }
  stop_cv_.notify_all();
  if (stop_timer_.joinable()) stop_timer_.join();
}

void pg_store::stop_waiting_at(std::chrono::steady_clock::time_point deadline) {
  std::lock_guard lock(stop_mu_);
  if (stop_timer_.joinable()) return;
  stop_timer_ = std::thread([this, deadline] {
    std::unique_lock lock(stop_mu_);
    if (stop_cv_.wait_until(lock, deadline, [this] { return closing_; })) return;
    past_deadline_ = true;
    if (busy_.empty()) return;
    // A live server cancels the statement and the call fails at once; a
    // hung one (a paused VM, a stopped process) answers neither it nor the
    // cancel, so after a moment the calls still waiting lose their
    // connection instead. Nothing is committed without our COMMIT.
    for (auto* c : busy_) c->cancel_in_background();
    stop_cv_.wait_for(lock, kCancelGrace, [this] { return closing_ || busy_.empty(); });
    for (auto* c : busy_) {
      spdlog::warn("postgres: a call did not end {} ms after the stop deadline; closing its connection",
                   kCancelGrace.count());
      c->sever();
    }
  });
}

result<insert_report> pg_store::insert_prepared(std::vector<message>& batch) {
  auto prepared = prepare_batch(batch);
  if (!prepared) return prepared.err();
  return with_connection([&](pg_connection& c) -> result<insert_report> {
    std::optional<std::minstd_rand> jitter;  // seeded on the first retry only
    const int attempts = std::max(opts_.max_tx_attempts, 1);
    // Batches are nearly always new messages; a redelivered one (after a
    // restart, or a client retrying with its Idempotency-Key) takes the
    // second, careful statement.
    bool all_new = true;
    for (int attempt = 1;; ++attempt) {
      auto r = insert_once(c, *prepared, batch, all_new);
      if (!r && all_new && unique_violation(c)) {
        all_new = false;
        --attempt;
        continue;
      }
      if (r || !serialization_failure(c)) return r;
      if (attempt >= attempts)
        return error(errc::unavailable, fmt::format("postgres: insert_batch gave up after {} serialization "
                                                    "failures: {}",
                                                    attempts, r.err().message));
      // Back off a little, with jitter, so the conflicting writers do not
      // collide again in lockstep.
      const auto base = std::min(2 << attempt, 200);
      if (!jitter) jitter.emplace(std::random_device{}());
      std::this_thread::sleep_for(std::chrono::milliseconds(base / 2 + static_cast<int>((*jitter)() % base)));
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

result<std::optional<message>> pg_store::find(const std::string& id) {
  const auto uuid = canonical_uuid(id);
  if (!uuid) return std::optional<message>{};
  return with_connection([&](pg_connection& c) -> result<std::optional<message>> {
    auto rows = c.run(select_one, {*uuid});
    if (!rows) return rows.err();
    if (rows->rows() == 0) return std::optional<message>{};
    auto m = row_to_message(*rows, 0);
    if (!m) return m.err();
    return std::optional<message>(std::move(*m));
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
  return with_connection([&](pg_connection& c) { return c.ping(opts_.ping_timeout); });
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
