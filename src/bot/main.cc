// feed-bot: simulated users and load generator for feed-api.
//
// The main thread is the controller: it parses options, starts one io_thread
// (io_context + thread) per --threads, sequences the phases (subscribers
// connect -> open-loop posting -> wait for deliveries -> report) and handles
// SIGINT/SIGTERM synchronously with sigtimedwait, so no I/O thread ever
// runs a signal handler. First signal: stop posting, report. Second: quit now.
#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include "base/log.h"
#include "bot/content.h"
#include "bot/head_probe.h"
#include "bot/io_thread.h"
#include "bot/options.h"
#include "bot/report.h"
#include "bot/run_context.h"

namespace {

using namespace feed::bot;
using namespace std::chrono_literals;

// How long a first stop signal lets the answers in flight come in.
constexpr std::chrono::seconds kStopGrace{5};

// Descriptors the bot itself needs beyond its sockets (stdio, epoll, timers, eventfds).
constexpr rlim_t kSpareFds = 64;

rlim_t raise_nofile() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

// Resolves every --api instance; false (with the reason logged) when one
// cannot be resolved: a name that does not resolve is a mistake in the
// command line, not a fault to survive.
bool resolve_instances(const bot_options& opts, std::vector<instance_target>& out) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::resolver resolver(ioc);
  for (const auto& api : opts.apis) {
    instance_target t{api.url, api.host_header, {}};
    try {
      for (const auto& e : resolver.resolve(api.host, api.port)) t.endpoints.push_back(e.endpoint());
    } catch (const std::exception& e) {
      spdlog::error("cannot resolve {}: {}", api.host, e.what());
      return false;
    }
    if (t.endpoints.empty()) {
      spdlog::error("cannot resolve {}", api.host);
      return false;
    }
    out.push_back(std::move(t));
  }
  return true;
}

class controller {
 public:
  controller(run_context& ctx, sigset_t signals) : ctx_(ctx), signals_(signals) {}

  int run();

 private:
  void start_threads();
  // Phase 1: every subscriber connected (or given up on) before the first post.
  bool connect_subscribers(run_outcome& outcome);
  void probe_resume_floor();
  // Phase 2: open-loop posting until every answer is in.
  bool post(run_outcome& outcome);
  bool drain_posts();
  // Phase 3: wait for the last deliveries.
  void wait_for_deliveries();
  void stop_threads(run_outcome& outcome);
  void judge(run_outcome& outcome, bool interrupted);
  void log_posts(const stats_sum& s, const histogram& post) const;

  // Sleeps up to `d`, watching for signals; returns true when one arrived.
  bool nap(std::chrono::milliseconds d);
  void maybe_progress(bool force = false);
  void report_outages(bool force = false);
  double since(clock::time_point t) const { return std::chrono::duration<double>(clock::now() - t).count(); }
  std::string instance_list() const {
    std::string out;
    for (const auto& i : ctx_.instances) out += (out.empty() ? "" : ", ") + i.url;
    return out;
  }
  static clock::duration seconds(double s) {
    return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
  }

  run_context& ctx_;
  sigset_t signals_;
  std::vector<std::unique_ptr<io_thread>> threads_;
  unsigned signals_seen_ = 0;
  clock::time_point t0_ = clock::now();
  clock::time_point last_progress_ = t0_;
  stats_sum last_sum_;
  clock::time_point last_outage_check_ = t0_;
  std::vector<bool> outage_reported_;
};

bool controller::nap(std::chrono::milliseconds d) {
  timespec ts{static_cast<time_t>(d.count() / 1000), static_cast<long>((d.count() % 1000) * 1'000'000)};
  const int sig = ::sigtimedwait(&signals_, nullptr, &ts);
  if (sig > 0) {
    ++signals_seen_;
    spdlog::info("{} received{}", sig == SIGINT ? "SIGINT" : "SIGTERM",
                 signals_seen_ == 1 ? ": stopping (again to quit at once)" : ": quitting");
    return true;
  }
  return false;
}

// An instance that has accepted nothing for a second is named once, with
// its last failure, and again when it accepts posts again: the progress line
// alone shows only a queue that grows. Blips shorter than a second are not
// named, so a busy instance answering some 503s does not flood the log.
void controller::report_outages(bool force) {
  const auto now = clock::now();
  if (!force && now - last_outage_check_ < 200ms) return;
  last_outage_check_ = now;
  outage_reported_.resize(ctx_.instance_count(), false);
  for (std::size_t k = 0; k < outage_reported_.size(); ++k) {
    const auto f = ctx_.avail.instance(k);
    const auto& url = ctx_.instances[k].url;
    if (f.open && f.open_since && now - *f.open_since >= 1s && !outage_reported_[k]) {
      outage_reported_[k] = true;
      spdlog::warn("{}: no post accepted for {:.1f} s (last failure: {}); due posts wait and are retried", url,
                   since(*f.open_since), f.last_failure.empty() ? "unknown" : f.last_failure);
    } else if (!f.open && outage_reported_[k]) {
      outage_reported_[k] = false;
      spdlog::info("{}: accepting posts again after {:.1f} s", url, f.last_closed_s);
    }
  }
}

void controller::maybe_progress(bool force) {
  report_outages();
  const auto& o = ctx_.opts;
  if (o.progress <= 0 && !force) return;
  const auto now = clock::now();
  const double dt = std::chrono::duration<double>(now - last_progress_).count();
  if (!force && dt < o.progress) return;
  const auto s = sum_stats(threads_);
  histogram post;
  histogram e2e;
  merge_latencies(threads_, post, e2e);
  const auto start = ctx_.start_ticks.load() != 0 ? ctx_.start() : t0_;
  std::vector<bool> down(ctx_.instance_count());
  for (std::size_t k = 0; k < down.size(); ++k) down[k] = ctx_.avail.instance(k).open;
  spdlog::info("{}", progress_line(std::chrono::duration<double>(now - start).count(), s, last_sum_, dt, post, e2e,
                                   o.subscribers, down));
  last_sum_ = s;
  last_progress_ = now;
}

void controller::start_threads() {
  const auto& o = ctx_.opts;
  const unsigned lanes = o.threads;
  unsigned first_conn = 0;
  for (unsigned t = 0; t < lanes; ++t) {
    const unsigned conns = o.concurrency / lanes + (t < o.concurrency % lanes ? 1 : 0);
    threads_.push_back(std::make_unique<io_thread>(ctx_, t, lanes, conns, first_conn));
    first_conn += conns;
  }
  for (auto& io : threads_) io->start_thread();
  for (auto& io : threads_) io->open_connections();
}

bool controller::connect_subscribers(run_outcome& outcome) {
  const auto& o = ctx_.opts;
  const unsigned lanes = o.threads;
  unsigned first_sub = 0;
  for (unsigned t = 0; t < lanes; ++t) {
    const unsigned n = o.subscribers / lanes + (t < o.subscribers % lanes ? 1 : 0);
    threads_[t]->open_subscribers(n, first_sub);
    first_sub += n;
  }
  spdlog::info("opening {} subscriber stream(s) to {}", o.subscribers, ctx_.feed_target);
  const auto deadline = clock::now() + seconds(o.connect_timeout);
  auto last_log = clock::now();
  for (;;) {
    const auto ready = sum_stats(threads_).subs_ready;
    if (ready >= o.subscribers) break;
    if (clock::now() >= deadline) {
      outcome.subscribers_failed = static_cast<unsigned>(o.subscribers - ready);
      spdlog::error("only {} of {} subscribers connected within {} s; the rest are not verified", ready,
                    o.subscribers, o.connect_timeout);
      for (auto& io : threads_) io->drop_unready();
      break;
    }
    if (nap(20ms)) return true;
    if (clock::now() - last_log >= 1s) {
      spdlog::info("subscribers connected: {}/{}", ready, o.subscribers);
      last_log = clock::now();
    }
  }
  spdlog::info("subscribers connected: {}/{} in {:.2f} s", sum_stats(threads_).subs_ready, o.subscribers, since(t0_));
  return false;
}

void controller::probe_resume_floor() {
  const auto floor = probe_newest_seq(ctx_, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                seconds(ctx_.opts.dial_timeout)));
  if (floor) {
    ctx_.resume_floor.store(*floor, std::memory_order_release);
    spdlog::debug("newest seq before posting: {}", *floor);
  } else {
    spdlog::info("could not read the newest seq ({}?limit=1); a subscriber that loses its stream before its "
                 "first event resumes without Last-Event-ID",
                 ctx_.opts.post_path);
  }
}

bool controller::post(run_outcome& outcome) {
  const auto& o = ctx_.opts;
  // A short lead so every lane starts from the same instant.
  const auto start = clock::now() + 5ms;
  ctx_.start_ticks.store(start.time_since_epoch().count(), std::memory_order_release);
  last_progress_ = start;
  last_sum_ = sum_stats(threads_);
  for (auto& io : threads_) io->start_posting();
  spdlog::info("posting to {} ({}) as {} user(s): {:.3f} msg/s, {}{}, {} connection(s), {} thread(s), run id {}",
               o.post_path, instance_list(), o.users, o.rate,
               ctx_.sched.finite() ? fmt::format("{} messages", ctx_.sched.total()) : std::string("until stopped"),
               o.duration > 0 ? fmt::format(" within {} s", o.duration) : std::string(), o.concurrency, o.threads,
               ctx_.run_id);
  const bool quit = drain_posts();
  report_outages(true);
  ctx_.avail.finish(clock::now());
  outcome.posting_s = std::chrono::duration<double>(clock::now() - start).count();
  return quit;
}

// Waits until every lane has all its answers; true when told to quit.
bool controller::drain_posts() {
  const unsigned lanes = ctx_.opts.threads;
  bool stop_sent = false;
  std::optional<clock::time_point> drain_deadline;
  std::optional<clock::time_point> signalled_at;
  auto stop_all = [&] {
    for (auto& io : threads_) io->stop_posting();
    stop_sent = true;
  };
  while (ctx_.posting_done.load(std::memory_order_acquire) < lanes) {
    if (nap(20ms)) {
      if (signals_seen_ >= 2) return true;
      if (!signalled_at) signalled_at = clock::now();
      if (!stop_sent) stop_all();
    }
    // A stop signal waits for the answers in flight only so long: against
    // a server that never answers, --request-timeout (30 s) would outlast
    // a container runtime's grace before SIGKILL, and the summary with it.
    if (signalled_at && clock::now() - *signalled_at > kStopGrace) {
      spdlog::warn("posts still unanswered {} s after the stop signal; reporting now", kStopGrace.count());
      return true;
    }
    // Pacing over: an answer in flight takes at most the request timeout,
    // a pending 503 retry at most its Retry-After; past that, cancel what
    // remains (retries still due, messages waiting for an instance to come
    // back), rather than wait out every retry.
    if (!drain_deadline && ctx_.pacing_done.load(std::memory_order_acquire) >= lanes) {
      drain_deadline = clock::now() + seconds(ctx_.opts.request_timeout + 61.0);
    }
    if (drain_deadline && clock::now() > *drain_deadline && !stop_sent) {
      spdlog::warn("answers still outstanding after the drain deadline; cancelling");
      stop_all();
    }
    maybe_progress();
  }
  return false;
}

void controller::wait_for_deliveries() {
  const auto& o = ctx_.opts;
  const auto deadline = clock::now() + seconds(o.verify_timeout);
  const auto accepted = ctx_.ledger->accepted_count();
  const auto ready = sum_stats(threads_).subs_ready;
  spdlog::info("posting done; waiting up to {} s for {} deliveries", o.verify_timeout, accepted * ready);
  while (clock::now() < deadline) {
    if (sum_stats(threads_).deliveries >= accepted * ready) break;
    if (nap(20ms)) break;
    maybe_progress();
  }
}

void controller::stop_threads(run_outcome& outcome) {
  outcome.at_end = sum_stats(threads_);
  for (auto& io : threads_) io->shutdown();
  for (auto& io : threads_) io->join();
  outcome.subs = collect_subscriber_figures(threads_);
  if (ctx_.ledger) outcome.duplicated_content = ctx_.ledger->content_duplicates();
}

void controller::judge(run_outcome& outcome, bool interrupted) {
  if (!ctx_.opts.verify) {
    // Posts were due and not one got a 202 (the API down, refusing or
    // failing every one): not a run to call ok.
    const auto s = sum_stats(threads_);
    if (s.scheduled > 0 && s.ok_2xx == 0) {
      outcome.exit_code = 1;
      spdlog::error("no post was accepted: {} scheduled, {} 4xx, {} 5xx, {} transport errors", s.scheduled,
                    s.client_4xx, s.server_5xx, s.transport_errors);
    }
    return;
  }
  if (interrupted) {
    outcome.exit_code = 1;  // interrupted before anything could be judged
    return;
  }
  outcome.verified = true;
  const auto accepted = ctx_.ledger->accepted_count();
  delivery_verdict verdict(ctx_.ledger->accepted_bits(), accepted,
                           ctx_.ledger->bits(message_ledger::state::unknown));
  for (const auto& io : threads_) {
    for (const auto& sub : io->subscribers()) {
      if (sub->ever_connected()) verdict.add(sub->tally());
    }
  }
  outcome.verify = verdict.totals();
  const auto& v = outcome.verify;
  const auto internal = sum_stats(threads_).coroutine_failures;
  const bool failed = v.missing > 0 || v.duplicated > 0 || outcome.duplicated_content > 0 ||
                      outcome.subscribers_failed > 0 || accepted == 0 || internal > 0;
  outcome.exit_code = failed ? 1 : 0;
  spdlog::log(failed ? spdlog::level::err : spdlog::level::info,
              "verify: {} accepted x {} subscribers: received {} of {}, lost {} (missing {}), duplicated {}, "
              "stored twice {}, out of order {}, unexpected {}, unknown outcome {} (delivered {}){}",
              accepted, v.subscribers, v.received, v.expected, v.lost, v.missing, v.duplicated,
              outcome.duplicated_content, v.out_of_order, v.unexpected, ctx_.ledger->unknown_count(),
              v.unknown_delivered, accepted == 0 ? " (nothing was accepted, so nothing is proven)" : "");
}

void controller::log_posts(const stats_sum& s, const histogram& post) const {
  // Every scheduled post is in exactly one of the counts that follow it
  // (retries aside), so the line adds up.
  spdlog::info("posts: {} scheduled, {} accepted, {} 4xx, {} 5xx, {} other statuses, {} transport errors, {} dropped "
               "by client, {} cancelled when stopped, {} retries, {} of unknown outcome; no 202 for {:.2f} s at "
               "most; latency p50 {:.2f} ms p99 {:.2f} ms p99.9 {:.2f} ms max {:.2f} ms",
               s.scheduled, s.ok_2xx, s.client_4xx, s.server_5xx, s.other_status, s.transport_errors,
               s.dropped_by_client, s.cancelled, s.retries + s.transport_retries, s.unknown_outcome,
               ctx_.avail.overall().longest_s,
               post.percentile(50) / 1000, post.percentile(99) / 1000, post.percentile(99.9) / 1000,
               static_cast<double>(post.max()) / 1000);
}

int controller::run() {
  const auto& o = ctx_.opts;
  start_threads();
  run_outcome outcome;
  bool quit = o.subscribers > 0 && connect_subscribers(outcome);
  if (!quit && o.subscribers > 0) probe_resume_floor();
  if (!quit) quit = post(outcome);
  if (!quit && o.verify) wait_for_deliveries();
  maybe_progress(true);
  stop_threads(outcome);
  judge(outcome, quit);

  const auto s = sum_stats(threads_);
  histogram post;
  histogram e2e;
  merge_latencies(threads_, post, e2e);
  log_posts(s, post);
  outcome.total_s = since(t0_);
  std::cout << boost::json::serialize(summary_json(ctx_, s, post, e2e, outcome)) << std::endl;
  return outcome.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  bot_options opts;
  if (auto rc = parse_options(argc, argv, opts)) return *rc;
  feed::set_log_level(opts.log_level);

  // Block the stop signals before any thread exists, so every thread
  // inherits the mask and the controller alone receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  const rlim_t fds = raise_nofile();
  const rlim_t needed = static_cast<rlim_t>(opts.subscribers) + opts.concurrency + kSpareFds;
  if (needed > fds) {
    std::cerr << "feed-bot: " << opts.subscribers << " subscribers + " << opts.concurrency
              << " connections need about " << needed << " open files; the limit is " << fds << "\n";
    return 2;
  }
  if (opts.threads > opts.concurrency) {
    spdlog::warn("--threads {} > --concurrency {}; using {} thread(s)", opts.threads, opts.concurrency,
                 opts.concurrency);
    opts.threads = opts.concurrency;
  }

  std::random_device rd;
  const std::uint64_t entropy = (std::uint64_t{rd()} << 32) ^ rd() ^
                                static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  if (!opts.seed_given) opts.seed = entropy >> 11;

  run_context ctx(opts, schedule(opts.rate, opts.count, opts.duration));
  // Fresh per run even with --seed, so a rerun never mistakes old messages for its own.
  ctx.run_id = make_run_id(entropy);
  ctx.token_prefix = token_prefix(ctx.run_id);
  ctx.feed_target = opts.feed_path + (opts.feed_query.empty() ? "" : "?" + opts.feed_query);
  if (opts.subscribers > 0) ctx.ledger = std::make_unique<message_ledger>();
  if (!resolve_instances(opts, ctx.instances)) return 1;
  spdlog::debug("open files limit {}", fds);

  controller c(ctx, signals);
  return c.run();
}
