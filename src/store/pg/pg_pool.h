// A bounded pool of pg_connections.
//
// Purpose: at most `size` connections exist at once; a caller borrows one as
// a lease and gives it back when the lease goes out of scope. Connections are
// opened lazily, so a pool over a database that is down costs nothing until
// used.
//
// Thread safety: acquire() may be called from any thread; each lease is used
// by one thread. The pool must outlive its leases.
//
// Failures: when every connection is leased, acquire() waits up to
// acquire_timeout and then returns errc::unavailable. A connection that
// libpq reports broken (PQstatus), or that comes back still inside a
// transaction, is closed on return; its slot is reopened by the next
// acquire(), so a database restart heals without intervention. Opening a
// connection fails with errc::unavailable within connect_timeout.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "base/result.h"
#include "store/pg/pg_connection.h"

namespace feed {

class pg_pool {
 public:
  class lease {
   public:
    lease(lease&& o) noexcept = default;
    lease& operator=(lease&&) = delete;
    lease(const lease&) = delete;
    ~lease();

    pg_connection& operator*() const { return *conn_; }
    pg_connection* operator->() const { return conn_.get(); }
    // The connection sat idle in the pool before this lease: the server may
    // have closed it meanwhile without libpq knowing yet.
    bool reused() const { return reused_; }

   private:
    friend class pg_pool;
    lease(pg_pool* pool, std::unique_ptr<pg_connection> conn, bool reused)
        : pool_(pool), conn_(std::move(conn)), reused_(reused) {}
    pg_pool* pool_;
    std::unique_ptr<pg_connection> conn_;
    bool reused_;
  };

  pg_pool(pg_connect_options opts, std::size_t size, std::chrono::milliseconds acquire_timeout);
  pg_pool(const pg_pool&) = delete;
  pg_pool& operator=(const pg_pool&) = delete;

  result<lease> acquire();

  std::size_t size() const { return size_; }

 private:
  void release(std::unique_ptr<pg_connection> c);

  const pg_connect_options opts_;
  const std::size_t size_;
  const std::chrono::milliseconds acquire_timeout_;
  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<pg_connection>> idle_;  // GUARDED_BY(mu_)
  std::size_t open_ = 0;  // GUARDED_BY(mu_) idle + leased + being opened
};

}  // namespace feed
