#include "bot/sse_subscriber.h"

#include <atomic>
#include <charconv>

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
constexpr auto kRetryDelay = std::chrono::milliseconds(250);
}  // namespace

sse_subscriber::sse_subscriber(run_context& ctx, asio::io_context& ioc, worker_stats& stats, histogram& e2e,
                               connect_gate& gate)
    : ctx_(ctx), stats_(stats), e2e_(e2e), gate_(gate), sock_(ioc), timer_(ioc) {}

void sse_subscriber::close() {
  closed_ = true;
  error_code ignored;
  sock_.close(ignored);
  timer_.cancel();
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
    ~release() { --g.active; }
  } on_exit{gate_};

  co_await asio::async_connect(sock_, ctx_.endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec || closed_) co_return false;
  // Small events; no need for Nagle on the request side either.
  sock_.set_option(tcp::no_delay(true), ec);

  std::string req = fmt::format(
      "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n", ctx_.feed_target,
      ctx_.host_header);
  if (ever_connected_ && !parser_.last_event_id().empty()) {
    fmt::format_to(std::back_inserter(req), "Last-Event-ID: {}\r\n", parser_.last_event_id());
  }
  req += "\r\n";
  co_await asio::async_write(sock_, asio::buffer(req), asio::redirect_error(asio::use_awaitable, ec));
  if (ec || closed_) co_return false;

  std::size_t used = 0;
  response_head head;
  for (;;) {
    const std::size_t n =
        co_await sock_.async_read_some(asio::buffer(buf_.data() + used, buf_.size() - used),
                                       asio::redirect_error(asio::use_awaitable, ec));
    if (ec || closed_) co_return false;
    used += n;
    const auto r = parse_response_head(std::string_view(buf_.data(), used), head);
    if (r == head_parse::ok) break;
    if (r == head_parse::bad || used == buf_.size()) {
      if (should_log_failure()) spdlog::warn("subscriber: malformed response head from feed ({} so far)", head_failures.load());
      co_return false;
    }
  }
  if (head.status != 200) {
    if (should_log_failure()) spdlog::warn("subscriber: feed answered {} ({} so far)", head.status, head_failures.load());
    co_return false;
  }
  chunked_ = head.chunked;
  body_bytes_ = used - head.head_bytes;
  std::memmove(buf_.data(), buf_.data() + head.head_bytes, body_bytes_);
  co_return true;
}

asio::awaitable<void> sse_subscriber::run() {
  error_code ec;
  while (!closed_) {
    const bool open = co_await open_stream();
    if (open) {
      stats_.subs_live.add();
      if (!ever_connected_) {
        ever_connected_ = true;
        stats_.subs_ready.add();
      } else {
        stats_.sub_reconnects.add();
      }
      parser_.reset_partial();
      chunks_.reset();
      on_bytes(std::string_view(buf_.data(), body_bytes_), clock::now());
      while (!closed_ && !(chunked_ && chunks_.done())) {
        const std::size_t n = co_await sock_.async_read_some(asio::buffer(buf_),
                                                             asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
        on_bytes(std::string_view(buf_.data(), n), clock::now());
      }
      stats_.subs_live.sub();
      if (!closed_) spdlog::debug("subscriber: stream ended ({}), reconnecting", ec ? ec.message() : "end of body");
    }
    error_code ignored;
    sock_.close(ignored);
    if (closed_) break;
    timer_.expires_after(kRetryDelay);
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
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
  const auto token = find_token(ev.data, ctx_.token_prefix);
  if (!token) {
    stats_.foreign_events.add();  // history, other clients: not ours to judge
    return;
  }
  std::optional<std::uint64_t> seq;
  std::uint64_t v = 0;
  if (auto [p, e] = std::from_chars(ev.id.data(), ev.id.data() + ev.id.size(), v);
      e == std::errc{} && p == ev.id.data() + ev.id.size() && !ev.id.empty()) {
    seq = v;
  }
  const auto sent = ctx_.ledger ? ctx_.ledger->sent_ns(*token) : std::nullopt;
  switch (tally_.record(*token, seq, sent.has_value())) {
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
