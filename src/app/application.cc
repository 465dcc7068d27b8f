#include "app/application.h"

#include <sys/resource.h>

#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>

#include "base/log.h"
#include "http/handlers/handlers.h"
#include "queue/memory/memory_queue.h"
#include "store/sqlite/sqlite_store.h"

namespace feed {
namespace {

namespace asio = boost::asio;

// Every SSE client holds a descriptor; lift the soft limit to the hard one.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Embedded mode: stored messages go straight to the broadcaster.
class broadcast_sink final : public processed_sink {
 public:
  explicit broadcast_sink(broadcaster& b) : b_(b) {}
  result<void> publish(std::span<const message> stored) override {
    b_.publish({stored.begin(), stored.end()});
    return {};
  }

 private:
  broadcaster& b_;
};

template <class Pred>
bool wait_until(std::chrono::steady_clock::time_point deadline, Pred done) {
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace

int run_application(const app_options& opts) {
  raise_fd_limit();
  if (!opts.kafka_brokers.empty() || !opts.database_url.empty()) {
    spdlog::error("this build runs the embedded mode only; --kafka-brokers/--database-url are not available");
    return 2;
  }

  auto opened = sqlite_store::open({opts.data_dir / "feed.db", opts.sqlite_synchronous});
  if (!opened) {
    spdlog::error("cannot open the store: {}", opened.err().message);
    return 1;
  }
  std::unique_ptr<store> db = std::move(*opened);
  auto last = db->max_seq();
  if (!last) {
    spdlog::error("cannot read the store: {}", last.err().message);
    return 1;
  }

  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::io_context*> loops;
  for (std::size_t i = 0; i < opts.threads; ++i) {
    contexts.push_back(std::make_unique<asio::io_context>(1));
    loops.push_back(contexts.back().get());
  }
  asio::thread_pool blocking(opts.blocking_threads);

  memory_queue queue(opts.queue_capacity);
  broadcaster fanout(loops, *last, opts.fanout, [&db](seq_t first, seq_t last_seq) {
    read_query q;
    q.after = seq_t{first.value() - 1};
    q.up_to = last_seq;
    q.limit = static_cast<std::size_t>(last_seq.value() - first.value() + 1);
    return db->read(q);
  });
  broadcast_sink sink(fanout);
  worker work(queue, *db, sink, opts.worker);
  work.start();

  http::services svc{queue, *db, fanout, blocking, opts.api};
  http::router routes;
  http::add_routes(routes, svc);
  http::server srv(loops, opts.server, routes, [&fanout] { return fanout.open_streams(); });
  if (auto r = srv.listen(); !r) {
    spdlog::error("{}", r.err().message);
    queue.close();
    work.stop(std::chrono::steady_clock::now() + opts.shutdown_timeout);
    return 1;
  }
  srv.start();
  spdlog::info("feed-api listening on {}:{} (embedded: {}, {} event loop(s), last seq {})", opts.server.host,
               srv.port(), (opts.data_dir / "feed.db").string(), opts.threads, last->value());

  std::promise<int> stop_signal;
  asio::signal_set signals(*loops.front(), SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (!ec) stop_signal.set_value(sig);
  });

  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
  for (auto* l : loops) {
    guards.push_back(asio::make_work_guard(*l));
    threads.emplace_back([l] { l->run(); });
  }

  const int sig = stop_signal.get_future().get();
  const auto deadline = std::chrono::steady_clock::now() + opts.shutdown_timeout;
  spdlog::info("received signal {}; stopping (at most {} s)", sig, opts.shutdown_timeout.count());

  srv.stop_accepting();
  srv.close_idle();
  if (!wait_until(deadline, [&] { return srv.in_flight() == 0; }))
    spdlog::warn("{} request(s) still in flight at the deadline", srv.in_flight());

  queue.close();
  work.stop(deadline);
  spdlog::info("worker stopped: {} message(s) stored in {} batch(es) since start", work.stats().stored.load(),
               work.stats().batches.load());

  std::vector<std::future<void>> closed;
  for (std::size_t i = 0; i < loops.size(); ++i) {
    auto done = std::make_shared<std::promise<void>>();
    closed.push_back(done->get_future());
    asio::post(*loops[i], [&fanout, i, done] {
      fanout.hub_at(i).close_all();
      done->set_value();
    });
  }
  for (auto& f : closed) f.wait_until(deadline);
  fanout.stop();
  srv.close_all();
  signals.cancel();

  guards.clear();
  for (auto* l : loops) {
    // Loops wind down once their sessions are gone; force the stragglers.
    asio::post(*l, [l, deadline] {
      if (std::chrono::steady_clock::now() >= deadline) l->stop();
    });
  }
  for (std::size_t i = 0; i < threads.size(); ++i) {
    while (!loops[i]->stopped() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    loops[i]->stop();
    threads[i].join();
  }
  blocking.join();
  spdlog::info("stopped cleanly");
  return 0;
}

}  // namespace feed
