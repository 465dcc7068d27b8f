// The embedded store: one SQLite database file in WAL mode.
//
// Concurrency: one writer connection (guarded by write_mu_) and a small pool
// of reader connections; WAL lets reads run while a batch commits. Each
// insert_batch is one transaction, so a batch costs one fsync (group commit).
// With synchronous=FULL (the default) a committed batch survives a power
// loss; NORMAL survives process crashes only. With FULL the writer's WAL
// writes are gathered in memory until the commit's sync
// (wal_write_buffer.h), which changes when bytes reach the kernel, not what
// is durable when a commit returns.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "base/file_lock.h"
#include "base/stop_deadline.h"
#include "store/store.h"

struct sqlite3;

namespace feed {

struct sqlite_options {
  std::filesystem::path path;             // database file; created if missing
  std::string synchronous = "FULL";       // FULL | NORMAL
  int busy_timeout_ms = 5000;             // wait on another process's lock
  std::size_t max_readers = 4;            // pooled read connections
  // The per-user table (messages_by_user) is filled in bulk, behind the
  // feed: once this many stored posts are past it, the next batch's
  // transaction adds them. A read for one user scans the rows past it, at
  // most this many plus one batch.
  std::size_t user_index_lag = 4096;
};

class sqlite_store final : public store {
 public:
  // Opens (creating if needed) and migrates the database.
  static result<std::unique_ptr<sqlite_store>> open(const sqlite_options& opts);
  ~sqlite_store() override;

  result<insert_report> insert_batch(std::vector<message>& batch) override;
  result<std::vector<message>> read(const read_query& q) override;
  result<std::optional<message>> find(const std::string& id) override;
  result<seq_t> max_seq() override;
  result<void> ping() override;
  // Also an error while the database's file system has under 1 MiB free
  // (base/free_space.h), before a write fails on it.
  result<void> write_status(std::chrono::milliseconds stall_limit) override;
  void stop_waiting_at(std::chrono::steady_clock::time_point deadline) override { give_up_.set(deadline); }

  // Schema version after migrations (for tests and logs).
  result<std::int64_t> schema_version();

 private:
  struct connection;
  explicit sqlite_store(sqlite_options opts);
  // A new connection; the writer's goes through the WAL write buffer when
  // synchronous is FULL (wal_write_buffer.h).
  result<std::unique_ptr<connection>> connect(bool writer) const;
  result<insert_report> insert_locked(std::vector<message>& batch);
  result<void> insert_fresh(std::span<message> batch, bool& duplicates);
  result<std::vector<message>> insert_each(std::span<const message> batch, std::size_t& inserted);
  // The rows of one user's read, in a read transaction on `c`.
  result<std::vector<message>> read_user(connection& c, const read_query& q);
  result<std::unique_ptr<connection>> take_reader();
  // The first column of the first row of `sql`, on a reader connection.
  result<std::int64_t> read_int64(const char* sql, std::string_view what);
  void return_reader(std::unique_ptr<connection> c);
  // SQLite's busy handler for every connection of this store (busy_timeout_ms,
  // and stop_waiting_at's deadline).
  static int on_busy(void* self, int count);
  // The name of the VFS the writer's database file goes through (for
  // sqlite_store_test_peer: which writers buffer their WAL writes).
  std::string writer_vfs();

  const sqlite_options opts_;
  // <path>.lock, held while the store is open: the seq counter and the
  // live feed are this process's, and a second process writing the same
  // file left the first one's streams silently short of what it stored.
  file_lock owner_;
  // The database file itself, locked the same way: <path>.lock can be
  // deleted while the store runs (a clean-up of lock files that look
  // stale), and a second process would then take a new one. flock, which
  // SQLite's own POSIX record locks neither see nor release.
  file_lock in_use_;
  std::mutex write_mu_;
  std::unique_ptr<connection> writer_;  // GUARDED_BY(write_mu_)
  std::mutex readers_mu_;
  std::vector<std::unique_ptr<connection>> readers_;  // GUARDED_BY(readers_mu_)
  write_health writes_;
  stop_deadline give_up_;  // stop_waiting_at's

  // A test seam, defined only in sqlite_store_test.cc: it runs insert_each,
  // the row-by-row path, on any batch. insert_batch takes that path only for
  // a batch holding a stored or repeated id, so without the seam a test
  // cannot check the multi-row path against it on the same batches. A
  // friend rather than a public method or an option, so that nothing but
  // the test can reach it and production code is unchanged.
  friend struct sqlite_store_test_peer;
};

}  // namespace feed
