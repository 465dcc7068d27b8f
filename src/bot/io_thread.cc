#include "bot/io_thread.h"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "bot/spawn.h"

namespace feed::bot {

namespace asio = boost::asio;

namespace {
constexpr auto kSweepEvery = std::chrono::milliseconds(100);
}

io_thread::io_thread(run_context& ctx, unsigned lane, unsigned lanes, unsigned connections, unsigned first_connection)
    : guard_(asio::make_work_guard(ioc_)),
      ctx_(ctx),
      stats_(ctx.instance_count()),
      poster_(ctx, ioc_, stats_, post_latency_, lane, lanes, connections, first_connection) {}

io_thread::~io_thread() {
  if (thread_.joinable()) {
    shutdown();
    join();
  }
}

void io_thread::start_thread() {
  thread_ = std::thread([this] {
    try {
      ioc_.run();
    } catch (const std::exception& e) {
      spdlog::error("I/O thread failed: {}", e.what());
    }
  });
}

void io_thread::open_subscribers(unsigned n, unsigned first_subscriber) {
  asio::post(ioc_, [this, n, first_subscriber] {
    for (unsigned k = 0; k < n; ++k) {
      subscribers_.push_back(
          std::make_unique<sse_subscriber>(ctx_, ioc_, stats_, e2e_latency_, gate_, first_subscriber + k));
      spawn_logged(ioc_, subscribers_.back()->run(), "subscriber", stats_.coroutine_failures);
    }
    if (n > 0) spawn_logged(ioc_, watch_subscribers(), "subscriber watchdog", stats_.coroutine_failures);
  });
}

asio::awaitable<void> io_thread::watch_subscribers() {
  boost::system::error_code ec;
  while (!shut_) {
    sweep_timer_.expires_after(kSweepEvery);
    co_await sweep_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    const auto now = clock::now();
    for (auto& s : subscribers_) s->check_deadlines(now);
  }
}

void io_thread::drop_unready() {
  asio::post(ioc_, [this] {
    for (auto& s : subscribers_) {
      if (!s->ever_connected()) s->close();
    }
  });
}

void io_thread::open_connections() {
  asio::post(ioc_, [this] { poster_.open(); });
}

void io_thread::start_posting() {
  asio::post(ioc_, [this] { poster_.start(); });
}

void io_thread::stop_posting() {
  asio::post(ioc_, [this] { poster_.stop(); });
}

void io_thread::shutdown() {
  asio::post(ioc_, [this] {
    shut_ = true;
    sweep_timer_.cancel();
    poster_.shutdown();
    for (auto& s : subscribers_) s->close();
    guard_.reset();
  });
}

void io_thread::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace feed::bot
