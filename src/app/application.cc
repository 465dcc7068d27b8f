#include "app/application.h"

#include <sys/resource.h>

#include <csignal>
#include <cstdio>

#include "base/log.h"
#include "base/thread_name.h"
#include "http/handlers/handlers.h"
#include "http/handlers/loop_waits.h"

namespace feed {
namespace {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

// Every SSE client holds a descriptor; lift the soft limit to the hard one.
// Below the connection cap (plus the store's, Kafka's and the process's
// own files) accept fails before the cap's 503 can answer, so say so now
// rather than in a stream of accept errors under load.
void raise_fd_limit(std::size_t max_connections) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  constexpr rlim_t kOwnFiles = 64;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max_connections + kOwnFiles)
    spdlog::warn("the open-files limit is {}, below --max-connections {} plus about {} of feed-api's own: "
                 "connections past the limit are refused by accept, not answered 503; raise the hard limit "
                 "(ulimit -Hn, LimitNOFILE=) or lower --max-connections",
                 rl.rlim_cur, max_connections, kOwnFiles);
}

// host:port, with an IPv6 address in brackets as in a URL.
std::string host_port(const std::string& host, std::uint16_t port) {
  return host.find(':') == std::string::npos ? fmt::format("{}:{}", host, port) : fmt::format("[{}]:{}", host, port);
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
  m.counter("feed_worker_retries_total", "Failed store/send/commit attempts that were retried",
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
bool wait_until(clock::time_point deadline, Pred done) {
  while (!done()) {
    if (clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

error cannot_start(const error& why) { return error(why.code, "cannot start: " + why.message); }

// The bounded steps share the shutdown budget less a reserve, so that what
// follows the last of them (joining the loops and the pool) still ends
// within --shutdown-timeout when a step uses all it is given.
clock::time_point stop_deadline(std::chrono::seconds budget) {
  const auto reserve = std::min<clock::duration>(std::chrono::milliseconds(budget) / 10, std::chrono::milliseconds(500));
  return clock::now() + budget - reserve;
}

}  // namespace

application::application(app_options opts) : opts_(std::move(opts)) {}

application::~application() {
  deadline_ = stop_deadline(opts_.shutdown_timeout);
  stops_.run();
}

result<void> application::start() {
  for (auto step : {&application::start_runtime, &application::listen, &application::open_backends,
                    &application::start_fanout, &application::start_worker, &application::serve}) {
    if (auto r = (this->*step)(); !r) return r;
  }
  return {};
}

std::uint16_t application::port() const { return server_->port(); }

int application::run() {
  const int sig = stop_signal_.get_future().get();
  deadline_ = stop_deadline(opts_.shutdown_timeout);
  spdlog::info("received signal {}; stopping (at most {} s)", sig, opts_.shutdown_timeout.count());
  stops_.run();
  spdlog::info("stopped cleanly");
  return 0;
}

// The event loops and the blocking pool; the loops' threads start last, in
// serve(), but stop only after every part that uses the loops. Then the
// pool, whose reads post their results to the loops; then what is left
// queued on the loops is destroyed.
result<void> application::start_runtime() {
  raise_fd_limit(opts_.server.max_connections);
  for (std::size_t i = 0; i < opts_.threads; ++i) {
    contexts_.push_back(std::make_unique<event_loop>(1));
    loops_.push_back(contexts_.back().get());
  }
  stops_.push([this] { end_pending(); });
  blocking_ = std::make_unique<asio::thread_pool>(opts_.blocking_threads);
  stops_.push([this] { blocking_->join(); });
  stops_.push([this] { stop_loops(); });
  return {};
}

// Before anything is created or migrated, so that a busy port fails at once
// and leaves no data directory or schema behind.
result<void> application::listen() {
  server_ = std::make_unique<http::server>(loops_, opts_.server, routes_,
                                           [this] { return fanout_->open_streams(); });
  if (auto r = server_->listen(); !r) return cannot_start(r.err());
  stops_.push([this] { server_->close_all(); });
  return {};
}

result<void> application::open_backends() {
  auto opened = backends::open(opts_);
  if (!opened) return cannot_start(opened.err());
  backends_ = std::move(*opened);
  stops_.push([this] {
    backends_->stop_enqueueing();
    backends_->close_input();
    backends_->stop_subscriber();
  });
  return {};
}

// With Kafka, the subscriber starts before the store's head is read: every
// message stored later arrives as an event, and older ones it also sees are
// dropped as duplicates. It holds what arrives until the broadcaster exists.
result<void> application::start_fanout() {
  if (auto r = backends_->start_subscriber(); !r) return cannot_start(r.err());
  store& db = backends_->db();
  auto last = db.max_seq();
  if (!last) return error(last.err().code, "cannot read the store: " + last.err().message);
  stored_head_ = *last;

  broadcaster_options fanout_opts = opts_.fanout;
  if (backends_->uses_kafka() && fanout_opts.head_probe_interval.count() == 0)
    fanout_opts.head_probe_interval = std::chrono::seconds(1);
  fanout_ = std::make_unique<broadcaster>(
      loops_, *last, fanout_opts,
      [&db](seq_t first, seq_t last_seq) {
        read_query q;
        q.after = seq_t{first.value() - 1};
        q.up_to = last_seq;
        q.limit = static_cast<std::size_t>(last_seq.value() - first.value() + 1);
        return db.read(q);
      },
      [&db] { return db.max_seq(); },
      [&db, pool = blocking_.get()](const read_query& q, page_done done) {
        asio::post(*pool, [&db, q, done = std::move(done)] { done(db.read(q)); });
      });
  stops_.push([this] {
    close_hubs();
    fanout_->stop();
  });

  backends_->deliver_to([fanout = fanout_.get(), keys = &keys_](std::vector<message> stored) {
    keys->seen_stored(stored);
    fanout->fan_out(std::move(stored));
  });
  // Nothing may feed the broadcaster once it has stopped.
  stops_.push([this] { backends_->stop_subscriber(); });
  return {};
}

result<void> application::start_worker() {
  auto sink = backends_->sink();
  if (!sink) return cannot_start(sink.err());
  auto worker_opts = opts_.worker;
  // Kafka's poll decodes each envelope, work worth overlapping with the
  // store's round trip; the in-process queue's is a move, and polling it
  // ahead only woke the poll thread once per post or two.
  worker_opts.poll_ahead = backends_->uses_kafka();
  worker_ = std::make_unique<worker>(backends_->reader(), backends_->db(), **sink, worker_opts);
  worker_->start();
  stops_.push([this] { stop_worker(); });
  return {};
}

result<void> application::serve() {
  services_.emplace(http::services{backends_->writer(), backends_->db(), *fanout_, *blocking_, opts_.api, registry_, keys_});
  http::add_routes(routes_, *services_);
  // The first loop serves Kafka's acknowledgements; it stops waiting for
  // them once the publisher has flushed.
  if (auto* publisher = backends_->publisher()) {
    auto pump = report_pump::start(*loops_.front(), *publisher);
    if (!pump) return cannot_start(pump.err());
    reports_ = std::move(*pump);
    stops_.push([this] { reports_->stop(); });
  }
  // Requests still in flight may enqueue until the server has drained them.
  stops_.push([this] { backends_->stop_enqueueing(); });
  register_metrics(registry_, *server_, *worker_, *fanout_);
  backends_->register_metrics(registry_);

  server_->start();
  stops_.push([this] { stop_serving(); });
  spdlog::info("feed-api listening on {} ({}; {} event loop(s), last seq {})",
               host_port(opts_.server.host, server_->port()), backends_->describe(), opts_.threads,
               stored_head_.value());

  signals_ = std::make_unique<asio::signal_set>(*loops_.front(), SIGINT, SIGTERM);
  signals_->async_wait([this](boost::system::error_code ec, int sig) {
    if (!ec) stop_signal_.set_value(sig);
  });
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    auto* l = loops_[i];
    guards_.push_back(asio::make_work_guard(*l));
    threads_.emplace_back([l, i] {
      name_this_thread("loop-" + std::to_string(i));
      l->run();
    });
  }
  return {};
}

void application::stop_serving() {
  server_->stop_accepting();
  server_->close_idle();
  const auto drained = [this] { return server_->in_flight() == 0; };
  // A post still waiting for durability when the stop's last second begins
  // (the latter half of a shorter budget) is answered as at its publish
  // timeout, 503 with its id, instead of losing its connection unanswered
  // when the loops stop: with --publish-timeout-ms above the budget it used
  // to.
  const auto now = clock::now();
  const auto give_up = now >= deadline_ ? deadline_
                                        : deadline_ - std::min<clock::duration>(std::chrono::seconds(1),
                                                                               (deadline_ - now) / 2);
  if (wait_until(give_up, drained)) return;
  if (loops_running()) {
    for (auto* l : loops_) asio::post(*l, [l] { asio::use_service<http::loop_waits>(*l).end_all(); });
  }
  if (!wait_until(deadline_, drained))
    spdlog::warn("{} request(s) still in flight at the deadline", server_->in_flight());
}

// The subscriber stops only after the worker has drained: with Kafka, the
// drained messages reach this instance's streams through it.
void application::stop_worker() {
  backends_->close_input();
  worker_->stop(deadline_);
  backends_->stop_subscriber();
  spdlog::info("worker stopped: {} message(s) stored in {} batch(es) since start", worker_->stats().stored.load(),
               worker_->stats().batches.load());
}

// Each hub belongs to its loop, so its streams are ended there. Before the
// loops run no stream can have opened, and nothing posted would run.
void application::close_hubs() {
  if (!loops_running()) return;
  std::vector<std::future<void>> closed;
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    auto done = std::make_shared<std::promise<void>>();
    closed.push_back(done->get_future());
    asio::post(*loops_[i], [fanout = fanout_.get(), i, done] {
      fanout->hub_at(i).close_all();
      done->set_value();
    });
  }
  for (auto& f : closed) f.wait_until(deadline_);
}

void application::stop_loops() {
  if (signals_) signals_->cancel();
  guards_.clear();
  if (!loops_running()) return;
  for (auto* l : loops_) {
    // Loops wind down once their sessions are gone; force the stragglers.
    asio::post(*l, [l, deadline = deadline_] {
      if (clock::now() >= deadline) l->stop();
    });
  }
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    while (!loops_[i]->stopped() && clock::now() < deadline_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    loops_[i]->stop();
    threads_[i].join();
  }
}

// The loops have stopped and the pool has joined: nothing runs a handler
// any more, and nothing adds one. A request that was still waiting at the
// deadline (a client that never sent its body) is a coroutine suspended in
// its loop; its frame is destroyed here, while the server, the handlers and
// the hubs it refers to still exist, rather than with the io_context after
// they are gone.
void application::end_pending() {
  for (auto& c : contexts_) c->shutdown();
}

int run_application(const app_options& opts) {
  application app(opts);
  if (auto r = app.start(); !r) {
    // Said even when the log level hides errors: a process that exits 1
    // without a word leaves its operator a silent crash loop.
    if (spdlog::should_log(spdlog::level::err))
      spdlog::error("{}", r.err().message);
    else
      std::fprintf(stderr, "feed-api: %s\n", r.err().message.c_str());
    return 1;
  }
  return app.run();
}

}  // namespace feed
