// The store over the PostgreSQL wire protocol (libpq): PostgreSQL itself or
// CockroachDB, in the SQL subset the two share.
//
// Contract: the one in store/store.h. insert_batch is one transaction that
// locks the single feed_sequence row, inserts the batch's new messages with
// the next seq values and advances the counter. The lock serialises writers
// across every process using the database, so seq order is commit order and
// there are no holes; ids already stored (or repeated within the batch) take
// no seq and come back with their stored seq. created_at keeps microseconds
// exactly (values are exchanged in the binary wire format).
//
// open() applies the embedded migrations (pg_migrate.h) under a lock shared
// by every instance, so two instances starting together migrate once.
//
// Thread safety: every method may be called from any thread at once; each
// call borrows one connection from a bounded pool (pool_size) for its
// duration. Calls block; keep them off the network threads.
//
// Failures: errc::unavailable when the database cannot be reached (connect
// fails within connect_timeout, the connection drops, the server is shutting
// down, statement_timeout fires, all pooled connections stay busy for
// acquire_timeout, serialization retries run out); errc::invalid_input for
// an id that is not a UUID or text with a NUL byte; errc::storage otherwise.
// A pooled connection that the server closed while it sat idle (a restart)
// is replaced and the call retried on a fresh connection, which is safe
// because every call is a read or an idempotent insert.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/pg/pg_pool.h"
#include "store/store.h"

namespace feed {

struct pg_options {
  // libpq connection URL (or key=value string), e.g.
  // postgresql://root@127.0.0.1:26257/defaultdb?sslmode=disable
  std::string url;
  // Connections kept open at most; concurrent calls beyond this wait.
  std::size_t pool_size = 4;
  // Bound on opening one connection (libpq counts whole seconds and treats
  // anything below 2 as 2); a database that is down fails this fast.
  std::chrono::seconds connect_timeout{5};
  // Server-side limit on each feed statement; 0 disables it. Migrations run
  // without it.
  std::chrono::milliseconds statement_timeout{10000};
  // Client-side bound on any one call's wait for the server's answer
  // (pg_connect_options::answer_timeout): a server that hangs makes calls
  // fail with errc::timeout after it instead of holding them. Above
  // statement_timeout, so that a live server's own limit answers first.
  // Migrations run without it.
  std::chrono::milliseconds answer_timeout{12000};
  // How long a call waits for a free pooled connection before it fails with
  // errc::unavailable.
  std::chrono::milliseconds acquire_timeout{5000};
  // How long ping() waits for the server's answer (then errc::timeout): a
  // server that hangs must make a readiness probe say so, not hold it.
  std::chrono::milliseconds ping_timeout{1000};
  // insert_batch attempts when the database reports a serialization failure
  // (SQLSTATE 40001, routine on CockroachDB under contention); at least 1.
  int max_tx_attempts = 10;
};

class pg_store final : public store {
 public:
  // Connects, migrates and returns the store; fails when the database is
  // unreachable, the migration lock or a migration fails, or the schema is
  // marked dirty.
  static result<std::unique_ptr<pg_store>> open(const pg_options& opts);
  ~pg_store() override;

  result<insert_report> insert_batch(std::vector<message>& batch) override;
  result<std::vector<message>> read(const read_query& q) override;
  result<std::optional<message>> find(const std::string& id) override;
  result<seq_t> max_seq() override;
  result<void> ping() override;
  result<void> write_status(std::chrono::milliseconds stall_limit) override { return writes_.status(stall_limit); }
  // At `deadline` the statements of the writes still running are cancelled
  // (a write waiting for the counter's lock would otherwise wait out the
  // statement timeout), and from then on every call fails at once. A call
  // (a write, or a read on the blocking pool) that its cancel does not end
  // within 100 ms, because the server hangs, has its connection closed
  // under it.
  void stop_waiting_at(std::chrono::steady_clock::time_point deadline) override;

  // Schema version recorded in schema_migrations (for tests and logs).
  result<std::int64_t> schema_version();

 private:
  explicit pg_store(const pg_options& opts);
  result<insert_report> insert_prepared(std::vector<message>& batch);

  // Runs f(connection) on a pooled connection; when the connection turns out
  // to have died while idle, retries on another one (bounded by the pool).
  template <class F>
  auto with_connection(F&& f) -> decltype(f(std::declval<pg_connection&>()));

  const pg_options opts_;
  // Set (under stop_mu_, so that a call registering in busy_ sees it or is
  // seen) when the stop deadline passes; read without the lock by calls and
  // by the pool's connects.
  std::atomic<bool> past_deadline_{false};
  pg_pool pool_;
  write_health writes_;

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::vector<pg_canceller*> busy_;     // GUARDED_BY(stop_mu_): calls running now
  bool closing_ = false;                // GUARDED_BY(stop_mu_)
  std::thread stop_timer_;              // from stop_waiting_at()
};

}  // namespace feed
