#include "bot/post_client.h"

#include <algorithm>
#include <cstring>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bot/chunked_decoder.h"
#include "bot/content.h"
#include "bot/http_response.h"

namespace feed::bot {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

struct post_client::connection {
  explicit connection(asio::io_context& ioc) : sock(ioc), wake(ioc) {}
  tcp::socket sock;
  asio::steady_timer wake;  // idle wait and reconnect back-off
  std::string req;
  std::vector<char> rbuf = std::vector<char>(8192);
  std::size_t used = 0;  // bytes in rbuf not yet consumed
  bool fresh = false;    // connected for the request it is about to send
  bool busy = false;
  bool timed_out = false;
  clock::time_point busy_since;
};

namespace {

constexpr auto kReconnectDelay = std::chrono::milliseconds(200);
constexpr double kMaxRetryAfterS = 60.0;

std::int64_t micros_between(clock::time_point from, clock::time_point to) {
  return std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(to - from).count());
}

}  // namespace

post_client::post_client(run_context& ctx, asio::io_context& ioc, worker_stats& stats, histogram& latency,
                         unsigned lane, unsigned lanes, unsigned connections)
    : ctx_(ctx),
      ioc_(ioc),
      stats_(stats),
      latency_(latency),
      lane_(lane),
      lanes_(lanes),
      queue_limit_(std::max<std::size_t>(1, ctx.opts.queue_limit / lanes)),
      log_each_(ctx.opts.rate <= 10.0),
      pace_timer_(ioc),
      watchdog_timer_(ioc) {
  for (unsigned k = 0; k < connections; ++k) conns_.push_back(std::make_unique<connection>(ioc));
}

post_client::~post_client() = default;

void post_client::open() {
  for (auto& c : conns_) asio::co_spawn(ioc_, run_connection(*c), asio::detached);
  asio::co_spawn(ioc_, watchdog(), asio::detached);
}

void post_client::start() {
  started_ = true;
  asio::co_spawn(ioc_, pace(), asio::detached);
}

void post_client::stop() {
  if (stopped_) return;
  stopped_ = true;
  pace_timer_.cancel();
  stats_.cancelled.add(queue_.size());
  stats_.queued.sub(queue_.size());
  queue_.clear();
  for (auto& t : retry_timers_) t.cancel();
  if (!started_) {
    pacing_done_ = true;
    ctx_.pacing_done.fetch_add(1, std::memory_order_acq_rel);
  }
  check_done();
}

void post_client::shutdown() {
  stop();
  shut_ = true;
  watchdog_timer_.cancel();
  for (auto& c : conns_) {
    error_code ignored;
    c->sock.close(ignored);
    c->wake.cancel();
  }
}

void post_client::check_done() {
  if (reported_done_ || !pacing_done_ || !queue_.empty() || in_flight_ > 0 || pending_retries_ > 0) return;
  reported_done_ = true;
  ctx_.posting_done.fetch_add(1, std::memory_order_acq_rel);
}

void post_client::submit(const job& j, bool priority) {
  if (!priority && queue_.size() >= queue_limit_) {
    stats_.dropped_by_client.add();
    return;
  }
  if (priority) queue_.push_front(j);
  else queue_.push_back(j);
  stats_.queued.add();
  if (!idle_.empty()) {
    connection* c = idle_.back();
    idle_.pop_back();
    c->wake.cancel();
  }
}

asio::awaitable<void> post_client::pace() {
  const auto start = ctx_.start();
  const std::uint64_t total = ctx_.sched.total();
  std::uint64_t next = lane_;
  error_code ec;
  while (!stopped_ && next < total) {
    const auto now = clock::now();
    const auto due = start + ctx_.sched.due(next);
    if (due > now) {
      pace_timer_.expires_at(due);
      co_await pace_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    // Everything due by now goes out in one burst; a late wake-up is the
    // scheduler's delay, and it shows in the latency of these messages.
    for (auto d = due; next < total && d <= now; d = start + ctx_.sched.due(next)) {
      stats_.scheduled.add();
      submit(job{next, 0, d}, false);
      next += lanes_;
    }
  }
  pacing_done_ = true;
  ctx_.pacing_done.fetch_add(1, std::memory_order_acq_rel);
  check_done();
}

asio::awaitable<void> post_client::watchdog() {
  const auto limit = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(ctx_.opts.request_timeout));
  error_code ec;
  while (!shut_) {
    watchdog_timer_.expires_after(std::chrono::milliseconds(100));
    co_await watchdog_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    const auto now = clock::now();
    for (auto& c : conns_) {
      if (c->busy && now - c->busy_since > limit) {
        c->timed_out = true;
        error_code ignored;
        c->sock.close(ignored);  // the pending read fails; exchange() counts it
      }
    }
  }
}

asio::awaitable<void> post_client::run_connection(connection& c) {
  error_code ec;
  while (!shut_) {
    if (!c.sock.is_open()) {
      co_await asio::async_connect(c.sock, ctx_.endpoints, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        stats_.connect_failures.add();
        error_code ignored;
        c.sock.close(ignored);
        if (shut_) break;
        spdlog::debug("post connection: connect failed: {}", ec.message());
        c.wake.expires_after(kReconnectDelay);
        co_await c.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      c.sock.set_option(tcp::no_delay(true), ec);
      c.used = 0;
      c.fresh = true;
    }
    if (queue_.empty()) {
      idle_.push_back(&c);
      c.wake.expires_at(clock::time_point::max());
      co_await c.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      // Woken by submit() (which removed us from idle_) or by shutdown.
      if (auto it = std::find(idle_.begin(), idle_.end(), &c); it != idle_.end()) idle_.erase(it);
      continue;
    }
    const job j = queue_.front();
    queue_.pop_front();
    stats_.queued.sub();
    const bool keep = co_await exchange(c, j);
    if (!keep) {
      error_code ignored;
      c.sock.close(ignored);
    }
  }
}

asio::awaitable<bool> post_client::exchange(connection& c, const job& j) {
  const auto& o = ctx_.opts;
  // Body: content depends only on (seed, index), identical on a retry.
  content_scratch_.clear();
  make_content(content_scratch_, o.seed, j.index, o.content_size, ctx_.token_prefix);
  const std::string user = fmt::format("user_{}", j.index % o.users + 1);
  body_scratch_.clear();
  make_post_body(body_scratch_, user, content_scratch_);
  c.req.clear();
  // The key names the message, so a retry after a 503 (which may have been
  // stored after all) is stored once by servers that honour it.
  fmt::format_to(std::back_inserter(c.req),
                 "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nIdempotency-Key: {}{}\r\n"
                 "Content-Length: {}\r\n\r\n",
                 o.post_path, ctx_.host_header, ctx_.token_prefix.substr(1), j.index, body_scratch_.size());
  c.req.append(body_scratch_);

  const auto sent_at = clock::now();
  if (ctx_.ledger) {
    ctx_.ledger->mark_sent(j.index, std::chrono::duration_cast<std::chrono::nanoseconds>(sent_at - ctx_.start()).count());
  }
  stats_.requests.add();
  stats_.in_flight.add();
  ++in_flight_;
  c.busy = true;
  c.timed_out = false;
  c.busy_since = sent_at;

  const bool reused = !c.fresh;
  c.fresh = false;
  error_code ec;
  response_head head;
  bool ok = false;
  bool got_bytes = false;
  std::size_t consumed = 0;
  co_await asio::async_write(c.sock, asio::buffer(c.req), asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) {
    // Read the head, then the body by its framing.
    bool have_head = false;
    chunked_decoder chunks;
    std::size_t body_pos = 0;
    for (;;) {
      const std::string_view have(c.rbuf.data(), c.used);
      if (!have_head) {
        const auto r = parse_response_head(have, head);
        if (r == head_parse::bad) {
          ec = asio::error::invalid_argument;
          break;
        }
        if (r == head_parse::ok) {
          have_head = true;
          body_pos = head.head_bytes;
        }
      }
      if (have_head) {
        if (head.status == 204 || head.status == 304 || (head.status >= 100 && head.status < 200)) {
          consumed = head.head_bytes;
          ok = true;
          break;
        }
        if (head.content_length) {
          if (c.used >= head.head_bytes + *head.content_length) {
            consumed = head.head_bytes + static_cast<std::size_t>(*head.content_length);
            ok = true;
            break;
          }
        } else if (head.chunked) {
          const auto s = chunks.feed(have.substr(body_pos), [](std::string_view) {});
          body_pos = c.used;
          if (s == chunked_decoder::step::error) {
            ec = asio::error::invalid_argument;
            break;
          }
          if (s == chunked_decoder::step::done) {
            consumed = c.used;  // no pipelining, so nothing follows
            ok = true;
            break;
          }
        }
      }
      if (c.used == c.rbuf.size()) {
        if (c.rbuf.size() >= 4 * kMaxResponseHead) {
          ec = asio::error::message_size;
          break;
        }
        c.rbuf.resize(c.rbuf.size() * 2);
      }
      const std::size_t n = co_await c.sock.async_read_some(asio::buffer(c.rbuf.data() + c.used, c.rbuf.size() - c.used),
                                                            asio::redirect_error(asio::use_awaitable, ec));
      c.used += n;
      got_bytes = got_bytes || n > 0;
      if (ec == asio::error::eof && have_head && !head.content_length && !head.chunked) {
        // Body delimited by connection close.
        consumed = c.used;
        head.close = true;
        ok = true;
        ec = {};
        break;
      }
      if (ec) break;
    }
  }
  const auto now = clock::now();
  c.busy = false;
  stats_.in_flight.sub();
  --in_flight_;

  // A connection the server closed while it sat unused (an idle or
  // first-request timeout) fails the next request before any byte of an
  // answer: send it again on a new connection, as HTTP clients do. The
  // Idempotency-Key makes that safe even if the server did read it. Each
  // stale connection can bounce a post once; a fresh one failing counts.
  const bool stale = !ok && !got_bytes && !c.timed_out && reused &&
                     (ec == asio::error::eof || ec == asio::error::connection_reset ||
                      ec == asio::error::broken_pipe);
  if (stale && !stopped_) {
    stats_.resent_stale.add();
    submit(j, true);
    c.used = 0;
    co_return false;
  }
  if (!ok) {
    if (logged_failures_++ < 5 || logged_failures_ % 1000 == 0) {
      spdlog::warn("post #{}: transport error: {}{}", j.index, c.timed_out ? "timeout" : ec.message(),
                   logged_failures_ > 5 ? fmt::format(" ({} so far)", logged_failures_) : "");
    }
    finish(j, 0, true, now);
    c.used = 0;
    co_return false;
  }
  // Keep any bytes past this response (there should be none without pipelining).
  std::memmove(c.rbuf.data(), c.rbuf.data() + consumed, c.used - consumed);
  c.used -= consumed;

  if (head.status == 503 && j.attempt < o.max_retries && !stopped_) {
    stats_.retries.add();
    const double wait_s = std::clamp(head.retry_after_s.value_or(1.0), 0.0, kMaxRetryAfterS);
    ++pending_retries_;
    spdlog::debug("post #{}: 503, retrying in {:.3f} s (attempt {})", j.index, wait_s, j.attempt + 1);
    asio::co_spawn(ioc_,
                   retry_later(job{j.index, j.attempt + 1, j.due},
                               std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(wait_s))),
                   asio::detached);
  } else {
    if (log_each_) {
      spdlog::info("{} posted \"{}\" -> {} in {:.1f} ms", user, content_scratch_, head.status,
                   static_cast<double>(micros_between(j.due, now)) / 1000.0);
    }
    finish(j, head.status, false, now);
  }
  co_return !head.close;
}

void post_client::finish(const job& j, int status, bool transport_error, clock::time_point now) {
  if (transport_error) {
    stats_.transport_errors.add();
    if (ctx_.ledger) ctx_.ledger->mark_failed(j.index);
  } else {
    latency_.record(static_cast<std::uint64_t>(micros_between(j.due, now)));
    if (status >= 200 && status < 300) {
      stats_.ok_2xx.add();
      if (ctx_.ledger) ctx_.ledger->mark_accepted(j.index);
    } else {
      if (status >= 400 && status < 500) stats_.client_4xx.add();
      else if (status >= 500) stats_.server_5xx.add();
      else stats_.other_status.add();
      if (ctx_.ledger) ctx_.ledger->mark_failed(j.index);
      if (logged_failures_++ < 5 || logged_failures_ % 1000 == 0) {
        spdlog::warn("post #{}: answered {}", j.index, status);
      }
    }
  }
  check_done();
}

asio::awaitable<void> post_client::retry_later(job j, clock::duration delay) {
  auto it = retry_timers_.emplace(retry_timers_.end(), ioc_);
  error_code ec;
  if (!stopped_) {
    it->expires_after(delay);
    co_await it->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  retry_timers_.erase(it);
  --pending_retries_;
  if (stopped_) {
    stats_.cancelled.add();
    if (ctx_.ledger) ctx_.ledger->mark_failed(j.index);
    check_done();
    co_return;
  }
  submit(j, true);
}

}  // namespace feed::bot
