#include "bot/worker.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace feed::bot {

namespace asio = boost::asio;

worker::worker(run_context& ctx, unsigned lane, unsigned lanes, unsigned connections)
    : guard_(asio::make_work_guard(ioc_)),
      ctx_(ctx),
      poster_(ctx, ioc_, stats_, post_latency_, lane, lanes, connections) {}

worker::~worker() {
  if (thread_.joinable()) {
    shutdown();
    join();
  }
}

void worker::start_thread() {
  thread_ = std::thread([this] {
    try {
      ioc_.run();
    } catch (const std::exception& e) {
      spdlog::error("I/O thread failed: {}", e.what());
    }
  });
}

void worker::open_subscribers(unsigned n) {
  asio::post(ioc_, [this, n] {
    for (unsigned k = 0; k < n; ++k) {
      subscribers_.push_back(std::make_unique<sse_subscriber>(ctx_, ioc_, stats_, e2e_latency_, gate_));
      asio::co_spawn(ioc_, subscribers_.back()->run(), asio::detached);
    }
  });
}

void worker::drop_unready() {
  asio::post(ioc_, [this] {
    for (auto& s : subscribers_) {
      if (!s->ever_connected()) s->close();
    }
  });
}

void worker::open_connections() {
  asio::post(ioc_, [this] { poster_.open(); });
}

void worker::start_posting() {
  asio::post(ioc_, [this] { poster_.start(); });
}

void worker::stop_posting() {
  asio::post(ioc_, [this] { poster_.stop(); });
}

void worker::shutdown() {
  asio::post(ioc_, [this] {
    poster_.shutdown();
    for (auto& s : subscribers_) s->close();
    guard_.reset();
  });
}

void worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace feed::bot
