#include "bot/sse_subscriber.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>

#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bot/content.h"
#include "bot/http_response.h"

namespace feed::bot {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {
// Thousands of subscribers fail the same way at once; log a few, then samples.
std::atomic<std::uint64_t> head_failures{0};
bool should_log_failure() {
  const auto n = head_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  return n <= 3 || n % 1000 == 0;
}
constexpr auto kGatePoll = std::chrono::milliseconds(2);
constexpr auto kMinBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::seconds(2);
// A stream that lasted this long earns an immediate reopen; a shorter one
// backs off, so a server that hangs up at once is not hammered.
constexpr auto kSteadyStream = std::chrono::seconds(1);

clock::duration seconds(double s) {
  return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
}
}  // namespace

sse_subscriber::sse_subscriber(run_context& ctx, asio::io_context& ioc, thread_stats& stats, histogram& e2e,
                               connect_gate& gate, std::size_t first_instance)
    : ctx_(ctx),
      stats_(stats),
      e2e_(e2e),
      gate_(gate),
      sock_(ioc),
      timer_(ioc),
      instance_(first_instance % ctx.instance_count()) {}

void sse_subscriber::close() {
  if (!closed_ && gaps_.open()) gaps_.finish(clock::now());
  closed_ = true;
  error_code ignored;
  sock_.close(ignored);
  timer_.cancel();
}

void sse_subscriber::check_deadlines(clock::time_point now) {
  const auto& o = ctx_.opts;
  const bool dial_late = dialing_ && now - dial_started_ > seconds(o.dial_timeout);
  const bool silent = streaming_ && o.stream_timeout > 0 && now - last_byte_ > seconds(o.stream_timeout);
  if (!dial_late && !silent) return;
  if (silent && should_log_failure()) {
    spdlog::warn("subscriber: no byte from {} for {} s; reopening on the next instance", ctx_.instances[instance_].url,
                 o.stream_timeout);
  }
  error_code ignored;
  sock_.close(ignored);  // the pending operation fails; run() moves on
}

asio::awaitable<void> sse_subscriber::run() {
  while (!closed_) {
    const bool open = co_await open_stream();
    const auto opened_at = clock::now();
    if (open) {
      on_open(opened_at);
      co_await stream();
    } else {
      stats_.per_instance[instance_].stream_failures.add();
    }
    error_code ignored;
    sock_.close(ignored);
    if (closed_) break;
    on_lost(clock::now());
    co_await pause_before_retry(open, opened_at);
  }
}

asio::awaitable<bool> sse_subscriber::open_stream() {
  error_code ec;
  while (gate_.active >= gate_.limit) {
    timer_.expires_after(kGatePoll);
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (closed_) co_return false;
  }
  ++gate_.active;
  struct release {
    connect_gate& g;
    bool& dialing;
    ~release() {
      --g.active;
      dialing = false;
    }
  } on_exit{gate_, dialing_};
  dialing_ = true;
  dial_started_ = clock::now();
  if (!co_await dial()) co_return false;
  co_return co_await read_head();
}

asio::awaitable<bool> sse_subscriber::dial() {
  error_code ec;
  co_await asio::async_connect(sock_, ctx_.instances[instance_].endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec || closed_) co_return false;
  // Small events; no need for Nagle on the request side either.
  sock_.set_option(tcp::no_delay(true), ec);
  const std::string req = request();
  co_await asio::async_write(sock_, asio::buffer(req), asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec && !closed_;
}

std::string sse_subscriber::request() const {
  std::string req = fmt::format(
      "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n", ctx_.feed_target,
      ctx_.instances[instance_].host_header);
  // The first stream starts where the feed is (--feed-query); every later
  // one resumes after the last seq seen, or before this run's first message.
  if (ever_connected_) {
    const auto floor = ctx_.resume_floor.load(std::memory_order_acquire);
    if (!parser_.last_event_id().empty()) {
      fmt::format_to(std::back_inserter(req), "Last-Event-ID: {}\r\n", parser_.last_event_id());
    } else if (floor >= 0) {
      fmt::format_to(std::back_inserter(req), "Last-Event-ID: {}\r\n", floor);
    }
  }
  req += "\r\n";
  return req;
}

asio::awaitable<bool> sse_subscriber::read_head() {
  error_code ec;
  std::size_t used = 0;
  response_head head;
  for (;;) {
    const std::size_t n = co_await sock_.async_read_some(asio::buffer(buf_.data() + used, buf_.size() - used),
                                                         asio::redirect_error(asio::use_awaitable, ec));
    if (ec || closed_) co_return false;
    used += n;
    auto r = parse_response_head(std::string_view(buf_.data(), used), head);
    // Interim answers (RFC 9110 §15.2) come before the stream's own head.
    while (r == head_parse::ok && head.status >= 100 && head.status < 200 && head.status != 101) {
      std::memmove(buf_.data(), buf_.data() + head.head_bytes, used - head.head_bytes);
      used -= head.head_bytes;
      head = {};
      r = parse_response_head(std::string_view(buf_.data(), used), head);
    }
    if (r == head_parse::ok) break;
    if (r == head_parse::bad || used == buf_.size()) {
      if (should_log_failure()) spdlog::warn("subscriber: malformed response head from feed ({} so far)", head_failures.load());
      co_return false;
    }
  }
  if (head.status != 200) {
    if (should_log_failure()) {
      spdlog::warn("subscriber: {} answered {} ({} so far)", ctx_.instances[instance_].url, head.status,
                   head_failures.load());
    }
    co_return false;
  }
  // What a browser's EventSource would refuse is no feed (WHATWG: a 200
  // whose Content-Type is not text/event-stream fails the connection).
  if (!head.event_stream) {
    if (should_log_failure()) {
      spdlog::warn("subscriber: {} answered 200 without Content-Type: text/event-stream ({} so far)",
                   ctx_.instances[instance_].url, head_failures.load());
    }
    co_return false;
  }
  chunked_ = head.chunked;
  body_bytes_ = used - head.head_bytes;
  std::memmove(buf_.data(), buf_.data() + head.head_bytes, body_bytes_);
  co_return true;
}

void sse_subscriber::on_open(clock::time_point now) {
  auto& inst = stats_.per_instance[instance_];
  inst.stream_opens.add();
  inst.subs_live.add();
  stats_.subs_live.add();
  if (!ever_connected_) {
    ever_connected_ = true;
    stats_.subs_ready.add();
  } else {
    ++reconnects_;
    stats_.sub_reconnects.add();
  }
  gaps_.success(now);
  last_instance_ = instance_;
  backoff_ = clock::duration{0};
  streaming_ = true;
  last_byte_ = now;
  parser_.reset_partial();
  chunks_.reset();
}

asio::awaitable<void> sse_subscriber::stream() {
  error_code ec;
  on_bytes(std::string_view(buf_.data(), body_bytes_), clock::now());
  while (!closed_ && !(chunked_ && chunks_.done())) {
    const std::size_t n = co_await sock_.async_read_some(asio::buffer(buf_), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    const auto now = clock::now();
    last_byte_ = now;
    on_bytes(std::string_view(buf_.data(), n), now);
  }
  streaming_ = false;
  stats_.subs_live.sub();
  stats_.per_instance[instance_].subs_live.sub();
  if (!closed_) {
    spdlog::debug("subscriber: stream from {} ended ({}), reopening on the next instance", ctx_.instances[instance_].url,
                  ec ? ec.message() : "end of body");
  }
}

void sse_subscriber::on_lost(clock::time_point now) {
  // Before the first stream there is nothing to lose: the controller waits
  // for every subscriber (or gives up on it) before posting.
  if (ever_connected_) gaps_.failure(now);
  instance_ = (instance_ + 1) % ctx_.instance_count();
}

asio::awaitable<void> sse_subscriber::pause_before_retry(bool was_streaming, clock::time_point opened_at) {
  if (was_streaming && clock::now() - opened_at >= kSteadyStream) co_return;
  backoff_ = std::clamp<clock::duration>(backoff_ * 2, kMinBackoff, kMaxBackoff);
  error_code ec;
  timer_.expires_after(backoff_);
  co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

void sse_subscriber::on_bytes(std::string_view bytes, clock::time_point now) {
  auto handler = [this, now](const sse_event& ev) { on_event(ev, now); };
  if (chunked_) {
    const auto s = chunks_.feed(bytes, [&](std::string_view piece) { parser_.feed(piece, handler); });
    if (s == chunked_decoder::step::error) {
      spdlog::warn("subscriber: bad chunked encoding; reconnecting");
      error_code ignored;
      sock_.close(ignored);
    }
  } else {
    parser_.feed(bytes, handler);
  }
  if (parser_.comments() != comments_seen_) {
    stats_.heartbeats.add(parser_.comments() - comments_seen_);
    comments_seen_ = parser_.comments();
  }
}

void sse_subscriber::on_event(const sse_event& ev, clock::time_point now) {
  stats_.events.add();
  if (ev.event == "reset") stats_.stream_resets.add();
  // Only a message event delivers a message (what a page's onmessage
  // gets); one named in another event's payload (an error, a notice) was
  // not delivered.
  if (!ev.event.empty() && ev.event != "message") {
    stats_.foreign_events.add();
    return;
  }
  const auto token = find_token(ev.data, ctx_.token_prefix);
  if (!token) {
    stats_.foreign_events.add();  // history, other clients: not ours to judge
    return;
  }
  on_own_event(*token, ev, now);
}

void sse_subscriber::on_own_event(std::uint64_t token, const sse_event& ev, clock::time_point now) {
  // The same content under a second id is a second stored copy, not a
  // repeat of this one; it is counted apart (ledger, content_duplicates).
  // A subscriber that meets the second copy first still counts it as its
  // delivery of the message.
  if (ctx_.ledger) {
    const auto id = find_message_id(ev.data);
    if (id && ctx_.ledger->note_id(token, id_hash(*id)) == message_ledger::id_seen::other && tally_.has(token)) {
      stats_.content_duplicates.add();
      return;
    }
  }
  std::optional<std::uint64_t> seq;
  std::uint64_t v = 0;
  if (auto [p, e] = std::from_chars(ev.id.data(), ev.id.data() + ev.id.size(), v);
      e == std::errc{} && p == ev.id.data() + ev.id.size() && !ev.id.empty()) {
    seq = v;
  }
  const auto sent = ctx_.ledger ? ctx_.ledger->sent_ns(token) : std::nullopt;
  switch (tally_.record(token, seq, sent.has_value())) {
    case delivery_tally::outcome::first: {
      stats_.deliveries.add();
      const auto sent_at = ctx_.start() + std::chrono::nanoseconds(*sent);
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - sent_at).count();
      e2e_.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, us)));
      break;
    }
    case delivery_tally::outcome::duplicate: stats_.duplicate_events.add(); break;
    case delivery_tally::outcome::foreign: stats_.foreign_events.add(); break;
  }
}

}  // namespace feed::bot
