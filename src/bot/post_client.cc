#include "bot/post_client.h"

#include <algorithm>
#include <cstring>

#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bot/content.h"
#include "bot/spawn.h"

namespace feed::bot {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

struct post_client::connection {
  connection(asio::io_context& ioc, std::size_t inst) : sock(ioc), wake(ioc), instance(inst) {}
  tcp::socket sock;
  asio::steady_timer wake;  // idle wait and reconnect back-off
  const std::size_t instance;
  std::string req;
  std::string body;  // of a 503, to see whether it names a message that may be stored
  std::vector<char> rbuf = std::vector<char>(8192);
  std::size_t used = 0;  // bytes in rbuf not yet consumed
  bool fresh = false;    // connected, and no request sent on it yet
  clock::time_point connected_at;
  bool busy = false;
  bool connecting = false;
  bool live = false;  // counted in live_ and the instance's gauge
  bool timed_out = false;
  clock::time_point busy_since;  // of the request, or of the connect attempt
  clock::duration backoff{0};
};

namespace {

constexpr auto kMinBackoff = std::chrono::milliseconds(100);
// How long a connection opened for a request counts as new: failing its
// first request within this says the server is failing, not that it closed
// an idle connection. Well under the shortest first-request timeout a
// server sets (feed-api's --header-timeout is 1 s at least): a request sent
// just inside such a timeout, measured from our side of the connect, can
// still meet the server's close, and is stale, not a failure.
constexpr auto kFreshFor = std::chrono::milliseconds(250);
constexpr auto kMaxBackoff = std::chrono::seconds(2);
constexpr double kMaxRetryAfterS = 60.0;
constexpr std::size_t kMaxKeptBody = 4096;

std::int64_t micros_between(clock::time_point from, clock::time_point to) {
  return std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(to - from).count());
}

clock::duration seconds(double s) {
  return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
}

// The first retry after a transport failure goes out at once (another
// instance is usually fine); further ones back off, so a bout of fast
// failures everywhere does not use up --max-retries in a moment.
clock::duration transport_retry_delay(unsigned attempt) {
  if (attempt <= 1) return clock::duration{0};
  const auto d = kMinBackoff * (1u << std::min(attempt - 2, 5u));
  return std::min<clock::duration>(d, kMaxBackoff);
}

// A 503 from feed-api names the message ("id") when it may be stored after
// all, and leaves it out when it certainly is not.
bool says_maybe_stored(std::string_view body) { return find_message_id(body).has_value(); }

}  // namespace

post_client::post_client(run_context& ctx, asio::io_context& ioc, thread_stats& stats, histogram& latency,
                         unsigned lane, unsigned lanes, unsigned connections, unsigned first_connection)
    : ctx_(ctx),
      ioc_(ioc),
      stats_(stats),
      latency_(latency),
      lane_(lane),
      lanes_(lanes),
      queue_limit_(std::max<std::size_t>(1, ctx.opts.queue_limit / lanes)),
      log_each_(ctx.opts.rate <= 10.0),
      retry_q_(ctx.instance_count()),
      live_(ctx.instance_count(), 0),
      pace_timer_(ioc),
      watchdog_timer_(ioc) {
  for (unsigned k = 0; k < connections; ++k) {
    conns_.push_back(std::make_unique<connection>(ioc, (first_connection + k) % ctx.instance_count()));
  }
}

post_client::~post_client() = default;

void post_client::spawn(asio::awaitable<void> work, const char* what) {
  spawn_logged(ioc_, std::move(work), what, stats_.coroutine_failures);
}

void post_client::open() {
  for (auto& c : conns_) spawn(run_connection(*c), "post connection");
  spawn(watchdog(), "post watchdog");
}

void post_client::start() {
  started_ = true;
  spawn(pace(), "post pacer");
}

void post_client::stop() {
  if (stopped_) return;
  stopped_ = true;
  pace_timer_.cancel();
  auto cancel_all = [this](std::deque<job>& q) {
    for (const auto& j : q) abandon(j);
    stats_.queued.sub(q.size());
    queued_ -= q.size();
    q.clear();
  };
  cancel_all(queue_);
  for (auto& q : retry_q_) cancel_all(q);
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
  if (reported_done_ || !pacing_done_ || queued_ > 0 || in_flight_ > 0 || pending_retries_ > 0) return;
  reported_done_ = true;
  ctx_.posting_done.fetch_add(1, std::memory_order_acq_rel);
}

// --- Queues and routing -----------------------------------------------------

void post_client::submit(const job& j) {
  if (queue_.size() >= queue_limit_) {
    stats_.dropped_by_client.add();
    return;
  }
  enqueue(j, false);
}

void post_client::enqueue(const job& j, bool front, bool freshest) {
  auto& q = j.avoid == kAnyInstance ? queue_ : retry_q_[static_cast<std::size_t>(j.avoid)];
  if (front) q.push_front(j);
  else q.push_back(j);
  ++queued_;
  stats_.queued.add();
  wake_idle_for(j, freshest);
}

bool post_client::other_instance_live(std::size_t instance) const {
  for (std::size_t k = 0; k < live_.size(); ++k) {
    if (k != instance && live_[k] > 0) return true;
  }
  return false;
}

// A job that failed on an instance goes elsewhere while anything else is up.
bool post_client::can_take(const connection& c, const job& j) const {
  return j.avoid == kAnyInstance || static_cast<std::size_t>(j.avoid) != c.instance ||
         !other_instance_live(c.instance);
}

std::optional<post_client::job> post_client::take_job(const connection& c) {
  auto pop = [this](std::deque<job>& q) {
    const job j = q.front();
    q.pop_front();
    --queued_;
    stats_.queued.sub();
    return j;
  };
  // Retries first, those that failed on the nearest instance before this
  // one first: for them this is "the next instance in the list".
  const std::size_t n = retry_q_.size();
  for (std::size_t d = 1; d < n; ++d) {
    auto& q = retry_q_[(c.instance + n - d) % n];
    if (!q.empty()) return pop(q);
  }
  if (auto& own = retry_q_[c.instance]; !own.empty() && can_take(c, own.front())) return pop(own);
  if (!queue_.empty()) return pop(queue_);
  return std::nullopt;
}

// The connection idle longest goes first, so work rotates over every
// connection and so over every instance, even at low rates. A post sent
// again because its connection had gone stale goes to the one idle the
// shortest instead: those idle as long are likely stale too.
void post_client::wake_idle_for(const job& j, bool freshest) {
  auto wake = [this](auto it) {
    connection* c = *it;
    idle_.erase(it);
    c->wake.cancel();
  };
  if (freshest) {
    for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
      if (can_take(**it, j)) return wake(std::next(it).base());
    }
    return;
  }
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (can_take(**it, j)) return wake(it);
  }
}

// Who may take what changed (an instance lost its last connection): let
// every idle connection look again.
void post_client::wake_all_idle() {
  for (connection* c : idle_) c->wake.cancel();
  idle_.clear();
}

// --- Pacing and the watchdog ------------------------------------------------

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
      submit(job{next, 0, d});
      next += lanes_;
    }
  }
  pacing_done_ = true;
  ctx_.pacing_done.fetch_add(1, std::memory_order_acq_rel);
  check_done();
}

// Closes sockets whose request or connect has taken too long; the pending
// operation then fails and its owner counts it.
asio::awaitable<void> post_client::watchdog() {
  const auto request_limit = seconds(ctx_.opts.request_timeout);
  const auto connect_limit = seconds(ctx_.opts.dial_timeout);
  error_code ec;
  while (!shut_) {
    watchdog_timer_.expires_after(std::chrono::milliseconds(100));
    co_await watchdog_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    const auto now = clock::now();
    for (auto& c : conns_) {
      const bool late = (c->busy && now - c->busy_since > request_limit) ||
                        (c->connecting && now - c->busy_since > connect_limit);
      if (late) {
        c->timed_out = true;
        error_code ignored;
        c->sock.close(ignored);
      }
    }
  }
}

// --- One connection ---------------------------------------------------------

asio::awaitable<void> post_client::run_connection(connection& c) {
  while (!shut_) {
    if (!c.sock.is_open()) {
      // Nothing more will come: a connection to a dead instance stops
      // knocking, so the progress line and the figures settle.
      if (reported_done_) co_return;
      const bool connected = co_await connect(c);
      if (!connected) continue;
    }
    if (auto j = take_job(c)) {
      co_await serve(c, *j);
      continue;
    }
    co_await idle_wait(c);
  }
}

asio::awaitable<bool> post_client::connect(connection& c) {
  error_code ec;
  c.connecting = true;
  c.timed_out = false;
  c.busy_since = clock::now();
  co_await asio::async_connect(c.sock, ctx_.instances[c.instance].endpoints,
                               asio::redirect_error(asio::use_awaitable, ec));
  c.connecting = false;
  if (ec || shut_) {
    on_connect_failed(c, c.timed_out ? asio::error::timed_out : ec);
    if (shut_) co_return false;
    c.backoff = std::clamp<clock::duration>(c.backoff * 2, kMinBackoff, kMaxBackoff);
    c.wake.expires_after(c.backoff);
    co_await c.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return false;
  }
  c.backoff = clock::duration{0};
  c.sock.set_option(tcp::no_delay(true), ec);
  c.used = 0;
  c.fresh = true;
  c.connected_at = clock::now();
  c.live = true;
  ++live_[c.instance];
  stats_.per_instance[c.instance].conns_live.add();
  co_return true;
}

void post_client::on_connect_failed(connection& c, const error_code& ec) {
  error_code ignored;
  c.sock.close(ignored);
  if (shut_) return;
  stats_.connect_failures.add();
  stats_.per_instance[c.instance].connect_failures.add();
  // A refused connect says the instance is down; against all instances it
  // counts only while messages wait, or an idle bot would report outages.
  if (feeding_availability()) {
    ctx_.avail.failure(c.instance, c.busy_since, waiting_work(), fmt::format("connect: {}", ec.message()));
  }
  spdlog::debug("post connection to {}: connect failed: {}", ctx_.instances[c.instance].url, ec.message());
}

void post_client::close_connection(connection& c) {
  error_code ignored;
  c.sock.close(ignored);
  c.used = 0;
  if (!c.live) return;
  c.live = false;
  stats_.per_instance[c.instance].conns_live.sub();
  if (--live_[c.instance] == 0) wake_all_idle();
}

asio::awaitable<void> post_client::idle_wait(connection& c) {
  error_code ec;
  idle_.push_back(&c);
  c.wake.expires_at(clock::time_point::max());
  co_await c.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  // Woken by enqueue() (which removed us from idle_) or by shutdown.
  if (auto it = std::find(idle_.begin(), idle_.end(), &c); it != idle_.end()) idle_.erase(it);
}

asio::awaitable<void> post_client::serve(connection& c, const job& j) {
  build_request(c, j);
  attempt a;
  begin_attempt(c, j, a);
  co_await exchange(c, a);
  end_attempt(c);
  if (!settle(c, j, a)) close_connection(c);
}

void post_client::build_request(connection& c, const job& j) {
  const auto& o = ctx_.opts;
  // Body: content depends only on (seed, index), identical on a retry.
  content_scratch_.clear();
  make_content(content_scratch_, o.seed, j.index, o.content_size, ctx_.token_prefix);
  body_scratch_.clear();
  make_post_body(body_scratch_, fmt::format("user_{}", j.index % o.users + 1), content_scratch_);
  c.req.clear();
  // The key names the message, so a retry (on any instance) of a post that
  // was stored after all is stored once: feed-api derives the id from it.
  fmt::format_to(std::back_inserter(c.req),
                 "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nIdempotency-Key: {}{}\r\n"
                 "Content-Length: {}\r\n\r\n",
                 o.post_path, ctx_.instances[c.instance].host_header, ctx_.token_prefix.substr(1), j.index,
                 body_scratch_.size());
  c.req.append(body_scratch_);
}

void post_client::begin_attempt(connection& c, const job& j, attempt& a) {
  a.sent_at = clock::now();
  if (ctx_.ledger) {
    ctx_.ledger->mark_sent(j.index,
                           std::chrono::duration_cast<std::chrono::nanoseconds>(a.sent_at - ctx_.start()).count());
  }
  stats_.requests.add();
  stats_.per_instance[c.instance].requests.add();
  if (j.retry_of == job::retry::after_503) stats_.retries.add();
  if (j.retry_of == job::retry::after_transport) stats_.transport_retries.add();
  stats_.in_flight.add();
  ++in_flight_;
  c.busy = true;
  c.timed_out = false;
  c.busy_since = a.sent_at;
  // A connection opened ahead of its first request and left unused (the
  // schedule had nothing due) is as stale as a kept-alive one: the server
  // may have closed it for sending no request (its header timeout).
  a.reused = !c.fresh || a.sent_at - c.connected_at >= kFreshFor;
  c.fresh = false;
}

void post_client::end_attempt(connection& c) {
  c.busy = false;
  stats_.in_flight.sub();
  --in_flight_;
}

asio::awaitable<void> post_client::exchange(connection& c, attempt& a) {
  a.written = co_await asio::async_write(c.sock, asio::buffer(c.req), asio::redirect_error(asio::use_awaitable, a.ec));
  if (!a.ec) co_await read_response(c, a);
  a.timed_out = c.timed_out;
}

// Keeps a 503's body, to see whether it names the message.
void post_client::keep_body(connection& c, const attempt& a, std::string_view piece) {
  if (a.head.status == 503 && c.body.size() < kMaxKeptBody) c.body.append(piece.substr(0, kMaxKeptBody - c.body.size()));
}

// Looks at what is buffered: is the response complete (a.ok), broken
// (a.ec), or is more needed?
post_client::read_step post_client::parse_buffered(connection& c, attempt& a, read_state& st) {
  while (!st.have_head) {
    const auto r = parse_response_head(std::string_view(c.rbuf.data(), c.used), a.head);
    if (r == head_parse::bad) return fail_read(a, asio::error::invalid_argument);
    if (r == head_parse::incomplete) return read_step::more;
    if (a.head.status >= 100 && a.head.status < 200) {
      // An interim answer (100 Continue, 103 Early Hints) comes before the
      // final one, which the post is waiting for (RFC 9110 §15.2); 101
      // would switch protocols, which no post asks for.
      if (a.head.status == 101) return fail_read(a, asio::error::invalid_argument);
      std::memmove(c.rbuf.data(), c.rbuf.data() + a.head.head_bytes, c.used - a.head.head_bytes);
      c.used -= a.head.head_bytes;
      a.head = {};
      continue;
    }
    st.have_head = true;
    st.body_pos = a.head.head_bytes;
  }
  const std::string_view have(c.rbuf.data(), c.used);
  const auto& h = a.head;
  if (h.status == 204 || h.status == 304) return complete(a, h.head_bytes);
  if (h.content_length) {
    if (c.used < h.head_bytes + *h.content_length) return read_step::more;
    const auto end = h.head_bytes + static_cast<std::size_t>(*h.content_length);
    keep_body(c, a, have.substr(h.head_bytes, end - h.head_bytes));
    return complete(a, end);
  }
  if (!h.chunked) return read_step::more;  // delimited by the connection's close
  const auto step = st.chunks.feed(have.substr(st.body_pos), [&](std::string_view piece) { keep_body(c, a, piece); });
  st.body_pos = c.used;
  if (step == chunked_decoder::step::error) return fail_read(a, asio::error::invalid_argument);
  return step == chunked_decoder::step::done ? complete(a, c.used) : read_step::more;
}

post_client::read_step post_client::complete(attempt& a, std::size_t consumed) {
  a.consumed = consumed;
  a.ok = true;
  return read_step::done;
}

post_client::read_step post_client::fail_read(attempt& a, boost::system::error_code ec) {
  a.ec = ec;
  return read_step::done;
}

// Reads the head, then the body by its framing (no pipelining, so nothing
// but this response is expected).
asio::awaitable<void> post_client::read_response(connection& c, attempt& a) {
  read_state st;
  c.body.clear();
  while (parse_buffered(c, a, st) == read_step::more) {
    if (c.used == c.rbuf.size()) {
      if (c.rbuf.size() >= 4 * kMaxResponseHead) {
        a.ec = asio::error::message_size;
        co_return;
      }
      c.rbuf.resize(c.rbuf.size() * 2);
    }
    const std::size_t n = co_await c.sock.async_read_some(asio::buffer(c.rbuf.data() + c.used, c.rbuf.size() - c.used),
                                                          asio::redirect_error(asio::use_awaitable, a.ec));
    c.used += n;
    a.got_bytes = a.got_bytes || n > 0;
    if (a.ec == asio::error::eof && st.have_head && !a.head.content_length && !a.head.chunked) {
      keep_body(c, a, std::string_view(c.rbuf.data(), c.used).substr(a.head.head_bytes));
      a.head.close = true;
      a.ec = {};
      complete(a, c.used);
      co_return;
    }
    if (a.ec) co_return;
  }
}

// --- After an attempt -------------------------------------------------------

bool post_client::settle(connection& c, const job& j, attempt& a) {
  const auto now = clock::now();
  if (!a.ok) return settle_transport_failure(c, j, a, now);
  // Keep any bytes past this response (there should be none without pipelining).
  std::memmove(c.rbuf.data(), c.rbuf.data() + a.consumed, c.used - a.consumed);
  c.used -= a.consumed;
  settle_answer(c, j, a, now);
  return !a.head.close;
}

bool post_client::settle_transport_failure(connection& c, const job& j, const attempt& a, clock::time_point now) {
  job next = j;
  next.avoid = static_cast<int>(c.instance);
  // Bytes went out and no answer came back: the server may have stored it.
  next.maybe_stored = j.maybe_stored || a.written > 0;

  // A connection the server closed while it sat unused (an idle or
  // first-request timeout) fails the next request before any byte of an
  // answer: send it again, as HTTP clients do; the Idempotency-Key makes
  // that safe even if the server did read it. A post is sent again so
  // once: a server that takes requests and drops the connection without
  // answering (which looks the same) would otherwise have each post sent
  // once per spare connection, past --max-retries and counted nowhere. A
  // fresh connection failing counts as a transport failure. The server did
  // nothing wrong, so neither is it an outage of the instance.
  const bool stale = !a.got_bytes && !a.timed_out && a.reused && !j.resent_stale &&
                     (a.ec == asio::error::eof || a.ec == asio::error::connection_reset ||
                      a.ec == asio::error::broken_pipe);
  if (stale && !stopped_) {
    stats_.resent_stale.add();
    next.resent_stale = true;
    next.retry_of = job::retry::none;  // sent again, not retried
    enqueue(next, true, /*freshest=*/true);
    return false;
  }
  stats_.per_instance[c.instance].transport_errors.add();
  if (feeding_availability()) {
    ctx_.avail.failure(c.instance, a.sent_at, true,
                       fmt::format("transport error: {}", a.timed_out ? "timeout" : a.ec.message()));
  }
  if (logged_failures_++ < 5 || logged_failures_ % 1000 == 0) {
    spdlog::warn("post #{} to {}: transport error: {}{}", j.index, ctx_.instances[c.instance].url,
                 a.timed_out ? "timeout" : a.ec.message(),
                 logged_failures_ > 5 ? fmt::format(" ({} so far)", logged_failures_) : "");
  }
  if (j.attempt < ctx_.opts.max_retries && !stopped_) {
    next.retry_of = job::retry::after_transport;
    ++next.attempt;
    const auto delay = transport_retry_delay(next.attempt);
    if (delay == clock::duration{0}) {
      enqueue(next, true);
    } else {
      ++pending_retries_;
      spawn(retry_later(next, delay), "post retry");
    }
    return false;
  }
  finish(next, 0, true, now);
  return false;
}

void post_client::settle_answer(connection& c, const job& j, const attempt& a, clock::time_point now) {
  const int status = a.head.status;
  auto& inst = stats_.per_instance[c.instance];
  if (status >= 200 && status < 300) {
    inst.answered_2xx.add();
    ctx_.avail.success(c.instance, now);
  } else if (status == 503) {
    inst.answered_503.add();
    if (feeding_availability()) ctx_.avail.failure(c.instance, a.sent_at, true, "answered 503");
  } else {
    inst.answered_other.add();
  }
  if (status != 503) {
    if (log_each_) {
      spdlog::info("user_{} posted \"{}\" to {} -> {} in {:.1f} ms", j.index % ctx_.opts.users + 1, content_scratch_,
                   ctx_.instances[c.instance].url, status, static_cast<double>(micros_between(j.due, now)) / 1000.0);
    }
    finish(j, status, false, now);
    return;
  }
  job next = j;
  next.avoid = static_cast<int>(c.instance);
  next.maybe_stored = j.maybe_stored || says_maybe_stored(c.body);
  if (j.attempt >= ctx_.opts.max_retries || stopped_) {
    finish(next, status, false, now);
    return;
  }
  next.retry_of = job::retry::after_503;
  ++next.attempt;
  const double wait_s = std::clamp(a.head.retry_after_s.value_or(1.0), 0.0, kMaxRetryAfterS);
  ++pending_retries_;
  spdlog::debug("post #{}: 503 from {}, retrying in {:.3f} s (attempt {})", j.index, ctx_.instances[c.instance].url,
                wait_s, next.attempt);
  spawn(retry_later(next, seconds(wait_s)), "post retry");
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
    abandon(j);
    check_done();
    co_return;
  }
  enqueue(j, true);
}

// --- Final outcomes ---------------------------------------------------------

void post_client::finish(const job& j, int status, bool transport_error, clock::time_point now) {
  const bool accepted = !transport_error && status >= 200 && status < 300;
  if (transport_error) {
    stats_.transport_errors.add();
  } else {
    latency_.record(static_cast<std::uint64_t>(micros_between(j.due, now)));
    if (accepted) stats_.ok_2xx.add();
    else if (status >= 400 && status < 500) stats_.client_4xx.add();
    else if (status >= 500) stats_.server_5xx.add();
    else stats_.other_status.add();
    if (status == 503) stats_.unavailable_503.add();
    if (!accepted && (logged_failures_++ < 5 || logged_failures_ % 1000 == 0)) {
      spdlog::warn("post #{}: answered {}", j.index, status);
    }
  }
  settle_ledger(j, accepted);
  check_done();
}

void post_client::abandon(const job& j) {
  stats_.cancelled.add();
  settle_ledger(j, false);
}

void post_client::settle_ledger(const job& j, bool accepted) {
  if (!accepted && j.maybe_stored) stats_.unknown_outcome.add();
  if (!ctx_.ledger) return;
  if (accepted) ctx_.ledger->mark_accepted(j.index);
  else if (j.maybe_stored) ctx_.ledger->mark_unknown(j.index);
  else ctx_.ledger->mark_failed(j.index);
}

}  // namespace feed::bot
