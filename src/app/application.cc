#include "app/application.h"

#include <sys/resource.h>

#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>

#include "base/log.h"
#include "http/handlers/handlers.h"
#include "app/backends.h"
#include "metrics/metrics.h"

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

// Everything below reads atomics the components keep anyway.
void register_metrics(metrics& m, const http::server& srv, const worker& work, const broadcaster& fanout) {
  for (int c = 1; c <= 5; ++c)
    m.counter("feed_http_responses_total", "HTTP responses sent, by status class",
              [&srv, c] { return double(srv.responses(c)); }, {{"class", std::to_string(c) + "xx"}});
  m.gauge("feed_http_connections", "Open HTTP connections still in request/response", [&srv] { return double(srv.connections()); });
  m.gauge("feed_sse_subscribers", "Open SSE streams", [&fanout] { return double(fanout.open_streams()); });
  m.gauge("feed_last_seq", "Highest seq delivered to subscribers", [&fanout] { return double(fanout.last_seq().value()); });
  m.counter("feed_worker_stored_total", "Messages stored by this instance's worker",
            [&work] { return double(work.stats().stored.load()); });
  m.counter("feed_worker_batches_total", "Batches stored by this instance's worker",
            [&work] { return double(work.stats().batches.load()); });
  m.counter("feed_worker_retries_total", "Failed store/publish/commit attempts that were retried",
            [&work] { return double(work.stats().retries.load()); });
  m.counter("feed_worker_idempotency_conflicts_total",
            "Messages dropped because their Idempotency-Key was stored with other content",
            [&work] { return double(work.stats().idempotency_conflicts.load()); });
  auto sum = [&fanout](auto field) {
    return [&fanout, field] {
      double total = 0;
      for (std::size_t i = 0; i < fanout.hubs(); ++i) total += double((fanout.hub_stats_at(i).*field).load());
      return total;
    };
  };
  m.counter("feed_sse_frames_sent_total", "SSE events and comments handed to the kernel, over all subscribers",
            sum(&hub_stats::frames_sent));
  m.counter("feed_sse_writes_total", "Gather writes (sendmsg calls) to subscribers", sum(&hub_stats::writes));
  m.counter("feed_sse_dropped_slow_total", "Subscribers disconnected for falling behind", sum(&hub_stats::dropped_slow));
  m.counter("feed_sse_closed_by_peer_total", "Subscribers that hung up", sum(&hub_stats::closed_by_peer));
}

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
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::io_context*> loops;
  for (std::size_t i = 0; i < opts.threads; ++i) {
    contexts.push_back(std::make_unique<asio::io_context>(1));
    loops.push_back(contexts.back().get());
  }
  // The port is taken before anything is created or migrated, so a busy
  // port fails at once and leaves no data directory or schema behind.
  http::router routes;
  const broadcaster* streaming = nullptr;  // set before the server starts
  http::server srv(loops, opts.server, routes, [&streaming] { return streaming->open_streams(); });
  if (auto r = srv.listen(); !r) {
    spdlog::error("cannot start: {}", r.err().message);
    return 1;
  }

  auto opened = backends::open(opts);
  if (!opened) {
    spdlog::error("cannot start: {}", opened.err().message);
    return 1;
  }
  backends& be = **opened;
  store& db = be.db();
  asio::thread_pool blocking(opts.blocking_threads);

  // With Kafka, the subscriber starts before the store's head is read: every
  // message stored later arrives as an event, and older ones it also sees are
  // dropped as duplicates. The broadcaster buffers until it is built.
  std::mutex early_mu;
  std::vector<message> early;
  broadcaster* fanout_ptr = nullptr;
  auto deliver = [&](std::vector<message> stored) {
    std::lock_guard lock(early_mu);
    if (fanout_ptr) fanout_ptr->publish(std::move(stored));
    else early.insert(early.end(), stored.begin(), stored.end());
  };
  if (auto r = be.start_subscriber(deliver); !r) {
    spdlog::error("cannot start: {}", r.err().message);
    return 1;
  }
  auto last = db.max_seq();
  if (!last) {
    spdlog::error("cannot read the store: {}", last.err().message);
    return 1;
  }

  broadcaster_options fanout_opts = opts.fanout;
  fanout_opts.hub.page_rows = opts.api.history_page;
  if (be.uses_kafka() && fanout_opts.head_probe_interval.count() == 0)
    fanout_opts.head_probe_interval = std::chrono::seconds(1);
  broadcaster fanout(
      loops, *last, fanout_opts,
      [&db](seq_t first, seq_t last_seq) {
        read_query q;
        q.after = seq_t{first.value() - 1};
        q.up_to = last_seq;
        q.limit = static_cast<std::size_t>(last_seq.value() - first.value() + 1);
        return db.read(q);
      },
      [&db] { return db.max_seq(); },
      [&db, &blocking](const read_query& q, page_done done) {
        asio::post(blocking, [&db, q, done = std::move(done)] { done(db.read(q)); });
      });
  {
    std::lock_guard lock(early_mu);
    fanout_ptr = &fanout;
    if (!early.empty()) fanout.publish(std::move(early));
  }
  // Whatever the exit path, the subscriber stops before the broadcaster it
  // feeds is destroyed.
  struct subscriber_guard {
    backends& b;
    ~subscriber_guard() { b.stop_subscriber(); }
  } stop_subscriber_first{be};
  auto sink = be.sink(deliver);
  if (!sink) {
    spdlog::error("cannot start: {}", sink.err().message);
    return 1;
  }
  worker work(be.input(), db, **sink, opts.worker);
  work.start();

  metrics registry;
  http::services svc{be.queue(), db, fanout, blocking, opts.api, registry};
  http::add_routes(routes, svc);
  streaming = &fanout;
  register_metrics(registry, srv, work, fanout);
  srv.start();
  spdlog::info("feed-api listening on {}:{} ({}; {} event loop(s), last seq {})", opts.server.host, srv.port(),
               be.describe(), opts.threads, last->value());

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

  be.stop_publishing();
  be.close_input();
  work.stop(deadline);
  be.stop_subscriber();
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
