#include "bot/report.h"

#include <fmt/format.h>

namespace feed::bot {

stats_sum sum_stats(const std::vector<std::unique_ptr<worker>>& workers) {
  stats_sum s;
  for (const auto& w : workers) {
    const auto& t = w->stats();
    s.scheduled += t.scheduled.get();
    s.requests += t.requests.get();
    s.ok_2xx += t.ok_2xx.get();
    s.client_4xx += t.client_4xx.get();
    s.server_5xx += t.server_5xx.get();
    s.other_status += t.other_status.get();
    s.transport_errors += t.transport_errors.get();
    s.dropped_by_client += t.dropped_by_client.get();
    s.cancelled += t.cancelled.get();
    s.retries += t.retries.get();
    s.connect_failures += t.connect_failures.get();
    s.resent_stale += t.resent_stale.get();
    s.in_flight += t.in_flight.get();
    s.queued += t.queued.get();
    s.subs_live += t.subs_live.get();
    s.subs_ready += t.subs_ready.get();
    s.sub_reconnects += t.sub_reconnects.get();
    s.events += t.events.get();
    s.heartbeats += t.heartbeats.get();
    s.deliveries += t.deliveries.get();
    s.duplicate_events += t.duplicate_events.get();
    s.foreign_events += t.foreign_events.get();
  }
  return s;
}

void merge_post_latency(const std::vector<std::unique_ptr<worker>>& workers, histogram& into) {
  for (const auto& w : workers) into.merge_from(w->post_latency());
}

void merge_e2e_latency(const std::vector<std::unique_ptr<worker>>& workers, histogram& into) {
  for (const auto& w : workers) into.merge_from(w->e2e_latency());
}

namespace {

double ms(double micros) { return micros / 1000.0; }

double rate(std::uint64_t now, std::uint64_t prev, double dt) {
  return dt > 0 ? static_cast<double>(now - prev) / dt : 0.0;
}

boost::json::object latency_json(const histogram& h) {
  boost::json::object o;
  o["count"] = h.count();
  o["min"] = ms(static_cast<double>(h.min()));
  o["mean"] = ms(h.mean());
  o["p50"] = ms(h.percentile(50));
  o["p90"] = ms(h.percentile(90));
  o["p99"] = ms(h.percentile(99));
  o["p99_9"] = ms(h.percentile(99.9));
  o["max"] = ms(static_cast<double>(h.max()));
  return o;
}

}  // namespace

std::string progress_line(double elapsed_s, const stats_sum& now, const stats_sum& prev, double dt_s,
                          const histogram& post, const histogram& e2e, unsigned subscribers) {
  std::string line = fmt::format("[{:7.1f}s] sent/s {:.0f}  2xx {}  err {}  drop {}  queue {}  p99 {:.2f} ms", elapsed_s,
                                 rate(now.requests, prev.requests, dt_s), now.ok_2xx, now.errors(),
                                 now.dropped_by_client, now.queued, ms(post.percentile(99)));
  if (now.retries > 0) fmt::format_to(std::back_inserter(line), "  retries {}", now.retries);
  if (subscribers > 0) {
    fmt::format_to(std::back_inserter(line), "  subs {}/{}  deliv/s {:.0f}  e2e p99 {:.2f} ms", now.subs_live,
                   subscribers, rate(now.deliveries, prev.deliveries, dt_s), ms(e2e.percentile(99)));
  }
  return line;
}

boost::json::object summary_json(const run_context& ctx, const stats_sum& s, const histogram& post,
                                 const histogram& e2e, const run_outcome& r) {
  const auto& o = ctx.opts;
  boost::json::object config;
  config["api"] = o.api;
  config["users"] = o.users;
  config["rate"] = o.rate;
  config["interval"] = static_cast<double>(o.users) / o.rate;
  config["duration"] = o.duration;
  config["count"] = o.count;
  config["planned_messages"] = ctx.sched.finite() ? boost::json::value(ctx.sched.total()) : boost::json::value(nullptr);
  config["concurrency"] = o.concurrency;
  config["threads"] = o.threads;
  config["content_size"] = o.content_size;
  config["seed"] = o.seed;
  config["run_id"] = ctx.run_id;
  config["post_path"] = o.post_path;
  config["feed_path"] = o.feed_path;
  config["feed_query"] = o.feed_query;
  config["subscribers"] = o.subscribers;
  config["verify"] = o.verify;
  config["verify_timeout"] = o.verify_timeout;
  config["max_retries"] = o.max_retries;
  config["queue"] = o.queue_limit;

  boost::json::object posts;
  posts["scheduled"] = s.scheduled;
  posts["requests"] = s.requests;
  posts["accepted_2xx"] = s.ok_2xx;
  posts["rejected_4xx"] = s.client_4xx;
  posts["failed_5xx"] = s.server_5xx;
  posts["other_status"] = s.other_status;
  posts["transport_errors"] = s.transport_errors;
  posts["dropped_by_client"] = s.dropped_by_client;
  posts["cancelled"] = s.cancelled;
  posts["retries_503"] = s.retries;
  posts["connect_failures"] = s.connect_failures;
  posts["resent_on_stale_connection"] = s.resent_stale;

  boost::json::object subs;
  subs["requested"] = o.subscribers;
  subs["connected"] = s.subs_ready;
  subs["failed"] = r.subscribers_failed;
  subs["reconnects"] = s.sub_reconnects;
  subs["events"] = s.events;
  subs["heartbeats"] = s.heartbeats;

  boost::json::object delivery;
  delivery["verified"] = r.verified;
  delivery["deliveries"] = s.deliveries;
  delivery["expected"] = r.verify.expected;
  delivery["received"] = r.verify.received;
  delivery["missing"] = r.verify.missing;
  delivery["duplicated"] = r.verify.duplicated;
  delivery["out_of_order"] = r.verify.out_of_order;
  delivery["unexpected"] = r.verify.unexpected;
  delivery["subscribers_incomplete"] = r.verify.subscribers_incomplete;
  delivery["foreign_events"] = s.foreign_events;

  boost::json::object out;
  out["config"] = std::move(config);
  out["posts"] = std::move(posts);
  out["post_latency_ms"] = latency_json(post);
  out["subscribers"] = std::move(subs);
  out["delivery"] = std::move(delivery);
  out["e2e_latency_ms"] = latency_json(e2e);
  out["duration_s"] = r.posting_s;
  out["wall_s"] = r.total_s;
  out["achieved_rate"] = r.posting_s > 0 ? static_cast<double>(s.answered()) / r.posting_s : 0.0;
  out["accepted_rate"] = r.posting_s > 0 ? static_cast<double>(s.ok_2xx) / r.posting_s : 0.0;
  out["exit_code"] = r.exit_code;
  return out;
}

}  // namespace feed::bot
