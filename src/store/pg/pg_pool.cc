#include "store/pg/pg_pool.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/log.h"

namespace feed {

pg_pool::lease::~lease() {
  if (pool_ && conn_) pool_->release(std::move(conn_));
}

pg_pool::pg_pool(pg_connect_options opts, std::size_t size, std::chrono::milliseconds acquire_timeout)
    : opts_(std::move(opts)), size_(std::max<std::size_t>(size, 1)), acquire_timeout_(acquire_timeout) {}

result<pg_pool::lease> pg_pool::acquire() {
  std::unique_ptr<pg_connection> c;
  {
    std::unique_lock lock(mu_);
    const auto ready = [this] { return !idle_.empty() || open_ < size_; };
    if (!freed_.wait_for(lock, acquire_timeout_, ready))
      return error(errc::unavailable, fmt::format("postgres: all {} pooled connections stayed busy for {} ms", size_,
                                                  acquire_timeout_.count()));
    if (!idle_.empty()) {
      c = std::move(idle_.back());
      idle_.pop_back();
    } else {
      ++open_;
    }
  }
  if (c) {
    if (c->healthy()) return lease(this, std::move(c), true);
    // Broken while idle: reopen in the same slot (open_ still counts it).
    spdlog::warn("postgres: a pooled connection is broken; reconnecting");
    c.reset();
  }
  auto fresh = pg_connection::connect(opts_);
  if (!fresh) {
    std::lock_guard lock(mu_);
    --open_;
    freed_.notify_one();
    return fresh.err();
  }
  return lease(this, std::move(*fresh), false);
}

void pg_pool::release(std::unique_ptr<pg_connection> c) {
  // A connection left inside a transaction or broken is not worth keeping:
  // closing it is the one reset that always works.
  if (!c->healthy() || !c->idle()) c.reset();
  std::lock_guard lock(mu_);
  if (c)
    idle_.push_back(std::move(c));
  else
    --open_;
  freed_.notify_one();
}

}  // namespace feed
