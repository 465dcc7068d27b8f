#include "bot/report.h"

#include <algorithm>

#include <boost/json/array.hpp>
#include <fmt/format.h>

namespace feed::bot {

namespace {

void add_instances(const thread_stats& t, std::vector<instance_sum>& into) {
  into.resize(std::max(into.size(), t.per_instance.size()));
  for (std::size_t k = 0; k < t.per_instance.size(); ++k) {
    const auto& i = t.per_instance[k];
    auto& o = into[k];
    o.requests += i.requests.get();
    o.answered_2xx += i.answered_2xx.get();
    o.answered_503 += i.answered_503.get();
    o.answered_other += i.answered_other.get();
    o.transport_errors += i.transport_errors.get();
    o.connect_failures += i.connect_failures.get();
    o.conns_live += i.conns_live.get();
    o.subs_live += i.subs_live.get();
    o.stream_opens += i.stream_opens.get();
    o.stream_failures += i.stream_failures.get();
  }
}

void add_posting(const thread_stats& t, stats_sum& s) {
  s.scheduled += t.scheduled.get();
  s.requests += t.requests.get();
  s.ok_2xx += t.ok_2xx.get();
  s.client_4xx += t.client_4xx.get();
  s.server_5xx += t.server_5xx.get();
  s.unavailable_503 += t.unavailable_503.get();
  s.other_status += t.other_status.get();
  s.transport_errors += t.transport_errors.get();
  s.dropped_by_client += t.dropped_by_client.get();
  s.cancelled += t.cancelled.get();
  s.retries += t.retries.get();
  s.transport_retries += t.transport_retries.get();
  s.unknown_outcome += t.unknown_outcome.get();
  s.connect_failures += t.connect_failures.get();
  s.resent_stale += t.resent_stale.get();
  s.in_flight += t.in_flight.get();
  s.queued += t.queued.get();
}

void add_subscribing(const thread_stats& t, stats_sum& s) {
  s.subs_live += t.subs_live.get();
  s.subs_ready += t.subs_ready.get();
  s.sub_reconnects += t.sub_reconnects.get();
  s.events += t.events.get();
  s.heartbeats += t.heartbeats.get();
  s.deliveries += t.deliveries.get();
  s.duplicate_events += t.duplicate_events.get();
  s.foreign_events += t.foreign_events.get();
  s.content_duplicates += t.content_duplicates.get();
  s.stream_resets += t.stream_resets.get();
}

}  // namespace

stats_sum sum_stats(const std::vector<std::unique_ptr<io_thread>>& threads) {
  stats_sum s;
  for (const auto& io : threads) {
    const auto& t = io->stats();
    add_posting(t, s);
    add_subscribing(t, s);
    s.coroutine_failures += t.coroutine_failures.get();
    add_instances(t, s.instances);
  }
  return s;
}

void merge_latencies(const std::vector<std::unique_ptr<io_thread>>& threads, histogram& post, histogram& e2e) {
  for (const auto& io : threads) {
    post.merge_from(io->post_latency());
    e2e.merge_from(io->e2e_latency());
  }
}

subscriber_figures collect_subscriber_figures(const std::vector<std::unique_ptr<io_thread>>& threads) {
  subscriber_figures f;
  for (const auto& io : threads) {
    for (const auto& sub : io->subscribers()) {
      f.reconnects_max = std::max(f.reconnects_max, sub->reconnects());
      f.longest_gap_s = std::max(f.longest_gap_s, sub->longest_gap_s());
    }
  }
  return f;
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

std::string_view instance_health(const instance_sum& now, const instance_sum& prev, bool outage) {
  const bool ok = now.answered_2xx > prev.answered_2xx;
  const bool failed = outage || now.answered_503 > prev.answered_503 || now.transport_errors > prev.transport_errors ||
                      now.connect_failures > prev.connect_failures || now.stream_failures > prev.stream_failures;
  const bool connected = now.conns_live > 0 || now.subs_live > 0;
  if (ok) return failed ? "flaky" : "up";
  if (failed) return connected ? "failing" : "down";
  return connected ? "up" : "idle";
}

std::string progress_line(double elapsed_s, const stats_sum& now, const stats_sum& prev, double dt_s,
                          const histogram& post, const histogram& e2e, unsigned subscribers,
                          const std::vector<bool>& outage) {
  std::string line = fmt::format("[{:7.1f}s] sent/s {:.0f}  2xx {}  err {}  drop {}  queue {}  p99 {:.2f} ms", elapsed_s,
                                 rate(now.requests, prev.requests, dt_s), now.ok_2xx, now.errors(),
                                 now.dropped_by_client, now.queued, ms(post.percentile(99)));
  if (now.retries + now.transport_retries > 0) {
    fmt::format_to(std::back_inserter(line), "  retries {}", now.retries + now.transport_retries);
  }
  if (subscribers > 0) {
    fmt::format_to(std::back_inserter(line), "  subs {}/{}  deliv/s {:.0f}  e2e p99 {:.2f} ms", now.subs_live,
                   subscribers, rate(now.deliveries, prev.deliveries, dt_s), ms(e2e.percentile(99)));
  }
  // One instance says nothing the figures above do not; several get a word each.
  if (now.instances.size() > 1) {
    line += "  |";
    for (std::size_t k = 0; k < now.instances.size(); ++k) {
      const auto& i = now.instances[k];
      const instance_sum before = k < prev.instances.size() ? prev.instances[k] : instance_sum{};
      fmt::format_to(std::back_inserter(line), " #{} {} {:.0f}/s", k, instance_health(i, before, k < outage.size() && outage[k]),
                     rate(i.answered_2xx, before.answered_2xx, dt_s));
      if (subscribers > 0) fmt::format_to(std::back_inserter(line), " {}s", i.subs_live);
    }
  }
  return line;
}

namespace {

boost::json::object config_json(const run_context& ctx) {
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
  config["dial_timeout"] = o.dial_timeout;
  config["stream_timeout"] = o.stream_timeout;
  config["resume_floor"] = ctx.resume_floor.load();
  return config;
}

boost::json::object posts_json(const stats_sum& s) {
  boost::json::object posts;
  posts["scheduled"] = s.scheduled;
  posts["requests"] = s.requests;
  posts["accepted_2xx"] = s.ok_2xx;
  posts["rejected_4xx"] = s.client_4xx;
  posts["failed_5xx"] = s.server_5xx;
  posts["unavailable_503"] = s.unavailable_503;
  posts["other_status"] = s.other_status;
  posts["transport_errors"] = s.transport_errors;
  posts["dropped_by_client"] = s.dropped_by_client;
  posts["cancelled"] = s.cancelled;
  posts["unknown_outcome"] = s.unknown_outcome;
  posts["retries_503"] = s.retries;
  posts["retries_transport"] = s.transport_retries;
  posts["connect_failures"] = s.connect_failures;
  posts["resent_on_stale_connection"] = s.resent_stale;
  return posts;
}

boost::json::object subscribers_json(const run_context& ctx, const stats_sum& s, const run_outcome& r) {
  boost::json::object subs;
  subs["requested"] = ctx.opts.subscribers;
  subs["connected"] = s.subs_ready;
  subs["failed"] = r.subscribers_failed;
  subs["reconnects"] = s.sub_reconnects;
  subs["reconnects_max_per_subscriber"] = r.subs.reconnects_max;
  subs["longest_gap_s"] = r.subs.longest_gap_s;
  subs["streaming_at_end"] = r.at_end.subs_live;
  subs["events"] = s.events;
  subs["heartbeats"] = s.heartbeats;
  subs["stream_resets"] = s.stream_resets;
  return subs;
}

boost::json::object delivery_json(const stats_sum& s, const run_outcome& r) {
  const auto& v = r.verify;
  boost::json::object delivery;
  delivery["verified"] = r.verified;
  delivery["deliveries"] = s.deliveries;
  delivery["expected"] = v.expected;
  delivery["received"] = v.received;
  delivery["missing"] = v.missing;
  delivery["lost"] = v.lost;
  delivery["lost_max_per_subscriber"] = v.lost_max_per_subscriber;
  delivery["duplicated"] = v.duplicated;
  delivery["duplicated_content"] = r.duplicated_content;
  delivery["content_duplicate_events"] = s.content_duplicates;
  delivery["out_of_order"] = v.out_of_order;
  delivery["unexpected"] = v.unexpected;
  delivery["unknown_delivered"] = v.unknown_delivered;
  delivery["unknown_partial"] = v.unknown_partial;
  delivery["subscribers_incomplete"] = v.subscribers_incomplete;
  delivery["foreign_events"] = s.foreign_events;
  return delivery;
}

boost::json::array instances_json(const run_context& ctx, const stats_sum& s, const run_outcome& r) {
  boost::json::array out;
  for (std::size_t k = 0; k < ctx.instances.size(); ++k) {
    const instance_sum i = k < s.instances.size() ? s.instances[k] : instance_sum{};
    const auto a = ctx.avail.instance(k);
    boost::json::object o;
    o["url"] = ctx.instances[k].url;
    o["requests"] = i.requests;
    o["answered_2xx"] = i.answered_2xx;
    o["answered_503"] = i.answered_503;
    o["answered_other"] = i.answered_other;
    o["transport_errors"] = i.transport_errors;
    o["connect_failures"] = i.connect_failures;
    o["longest_unavailable_s"] = a.longest_s;
    o["outages"] = a.outages;
    o["unavailable_at_end"] = a.open;
    o["stream_opens"] = i.stream_opens;
    o["stream_failures"] = i.stream_failures;
    o["subscribers_at_end"] = k < r.at_end.instances.size() ? r.at_end.instances[k].subs_live : 0;
    out.push_back(std::move(o));
  }
  return out;
}

boost::json::object account_json(const stats_sum& s, const run_outcome& r) {
  boost::json::object a;
  a["accepted"] = s.ok_2xx;
  a["lost"] = r.verify.lost;
  a["lost_max_per_subscriber"] = r.verify.lost_max_per_subscriber;
  a["duplicated"] = r.verify.duplicated;
  a["duplicated_content"] = r.duplicated_content;
  a["out_of_order"] = r.verify.out_of_order;
  a["unknown_outcome"] = s.unknown_outcome;
  a["unknown_delivered"] = r.verify.unknown_delivered;
  return a;
}

boost::json::object availability_json(const run_context& ctx, const run_outcome& r) {
  const auto overall = ctx.avail.overall();
  boost::json::object a;
  a["longest_unavailable_s"] = overall.longest_s;
  a["unavailable_outages"] = overall.outages;
  a["longest_subscriber_gap_s"] = r.subs.longest_gap_s;
  return a;
}

}  // namespace

boost::json::object summary_json(const run_context& ctx, const stats_sum& s, const histogram& post,
                                 const histogram& e2e, const run_outcome& r) {
  boost::json::object out;
  out["config"] = config_json(ctx);
  out["posts"] = posts_json(s);
  out["post_latency_ms"] = latency_json(post);
  out["subscribers"] = subscribers_json(ctx, s, r);
  out["delivery"] = delivery_json(s, r);
  out["e2e_latency_ms"] = latency_json(e2e);
  out["instances"] = instances_json(ctx, s, r);
  // The account a fault-injection test reads: grouped, and the same figures
  // again at the top level.
  const auto account = account_json(s, r);
  const auto avail = availability_json(ctx, r);
  for (const auto* group : {&account, &avail}) {
    for (const auto& [key, value] : *group) out[key] = value;
  }
  out["verify"] = account;
  out["availability"] = avail;
  out["internal_errors"] = s.coroutine_failures;
  out["duration_s"] = r.posting_s;
  out["wall_s"] = r.total_s;
  out["achieved_rate"] = r.posting_s > 0 ? static_cast<double>(s.answered()) / r.posting_s : 0.0;
  out["accepted_rate"] = r.posting_s > 0 ? static_cast<double>(s.ok_2xx) / r.posting_s : 0.0;
  out["exit_code"] = r.exit_code;
  return out;
}

}  // namespace feed::bot
