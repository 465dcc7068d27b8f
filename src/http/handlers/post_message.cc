#include <atomic>
#include <memory>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "base/log.h"
#include "http/handlers/handlers.h"
#include "http/request_checks.h"
#include "http/response.h"
#include "model/inflight_keys.h"
#include "model/message_id.h"

namespace feed::http {
namespace {

using clock = asio::steady_timer::clock_type;

// What the handler keeps between requests, for posts with an Idempotency-Key.
// Shared with queue callbacks, which may outlive a request.
struct keyed_posts {
  inflight_keys in_flight{1 << 16};
  // Store lookups waiting on the blocking pool; past a bound (a store that
  // hangs) posts skip the lookup rather than queue behind it.
  std::atomic<int> lookups{0};
  static constexpr int max_lookups = 32;
};

// Starts `op(complete)`, whose `complete(T)` may run on any thread, and waits
// on this coroutine's loop for it until `deadline` at most: nullopt when the
// deadline came first (a later completion is then ignored).
template <class T, class Op>
asio::awaitable<std::optional<T>> complete_before(clock::time_point deadline, Op op) {
  struct state {
    explicit state(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    std::optional<T> value;
    bool done = false;
  };
  auto ex = co_await asio::this_coro::executor;
  auto st = std::make_shared<state>(ex);
  st->timer.expires_at(deadline);
  auto complete = [st, ex](T value) {
    asio::post(ex, [st, value = std::move(value)]() mutable {
      if (st->done) return;
      st->done = true;
      st->value = std::move(value);
      // Expiring (not cancel) also ends a wait that has not started yet.
      st->timer.expires_at(clock::time_point::min());
    });
  };
  op(std::move(complete));
  co_await st->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  st->done = true;
  co_return std::move(st->value);
}

// Header values quoted in errors: printable ASCII only, so the error stays
// valid UTF-8 JSON whatever bytes the client sent.
std::string printable(std::string_view v) {
  std::string out;
  for (char c : v.substr(0, 100)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  return out;
}

bool is_json_media_type(std::string_view ct) {
  const auto type = trim_ows(ct.substr(0, ct.find(';')));
  return beast::iequals(type, "application/json") ||
         (type.size() > 5 && beast::iequals(type.substr(type.size() - 5), "+json"));
}

// The charset parameter of a media type ("" when absent), unquoted.
std::string_view charset_of(std::string_view ct) {
  for (auto p = ct.find(';'); p != std::string_view::npos;) {
    const auto next = ct.find(';', p + 1);
    const auto param = ct.substr(p + 1, next == std::string_view::npos ? std::string_view::npos : next - p - 1);
    const auto eq = param.find('=');
    if (eq != std::string_view::npos && beast::iequals(trim_ows(param.substr(0, eq)), "charset")) {
      auto value = trim_ows(param.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      return value;
    }
    p = next;
  }
  return {};
}

struct refusal {
  status code;
  std::string message;
};

// What is wrong with the request's headers, if anything.
std::optional<refusal> check_headers(const request& req) {
  if (req.find(beast::http::field::content_encoding) != req.end())
    return refusal{status::unsupported_media_type,
                   "Content-Encoding is not supported; send the JSON body as is, without a Content-Encoding header"};
  const auto ct = req[beast::http::field::content_type];
  if (ct.empty()) return std::nullopt;
  if (!is_json_media_type(ct))
    return refusal{status::unsupported_media_type, "Content-Type must be application/json, got " + printable(ct)};
  if (auto cs = charset_of(ct); !cs.empty() && !beast::iequals(cs, "utf-8") && !beast::iequals(cs, "utf8"))
    return refusal{status::unsupported_media_type,
                   "the body must be UTF-8 JSON; Content-Type names charset " + printable(cs)};
  return std::nullopt;
}

// The Idempotency-Key header: nullopt when absent, or what is wrong with it.
std::optional<std::string_view> idempotency_key(const request& req, std::string& problem) {
  const auto n = req.count("Idempotency-Key");
  if (n == 0) return std::nullopt;
  if (n > 1) {
    problem = "send at most one Idempotency-Key header";
    return std::nullopt;
  }
  const auto key = req["Idempotency-Key"];
  if (key.empty() || key.size() > 128) problem = "Idempotency-Key must be 1 to 128 characters";
  for (char c : key)
    if (c < 0x21 || c > 0x7e) problem = "Idempotency-Key may contain only visible ASCII characters";
  return key;
}

response accepted(const request& req, const std::string& id) {
  return json_response(req, status::accepted, boost::json::object{{"id", id}, {"status", "accepted"}});
}

response key_conflict(const request& req) {
  return error_response(req, status::unprocessable_entity,
                        "this Idempotency-Key was already used by this user_id for different content; use a new "
                        "key for a new message (a retry must repeat the request exactly)");
}

response unavailable(const services& s, response res) {
  res.set(beast::http::field::retry_after, std::to_string(s.opts.retry_after_seconds));
  return res;
}

// A 503 for a post that may or may not be stored: the id lets the client
// retry safely (with the same Idempotency-Key) or look for it.
response outcome_unknown(const services& s, const request& req, const std::string& id, std::string_view why) {
  const auto text = fmt::format(
      "{}; the outcome is unknown: message {} may still be stored. To be safe, retry later with the same "
      "Idempotency-Key (it is then stored once), or look for this id in the feed before posting again",
      why, id);
  return unavailable(s, json_response(req, status::service_unavailable,
                                      boost::json::object{{"error", text}, {"id", id}}));
}

response not_stored(const services& s, const request& req, std::string_view why) {
  return unavailable(s, error_response(req, status::service_unavailable,
                                       fmt::format("the message was not stored: {}; retry later", why)));
}

response timed_out(const services& s, const request& req, const std::string& id) {
  const auto why = fmt::format("the queue did not confirm it within {} ms", s.opts.publish_timeout.count());
  if (s.queue.withdraw(id)) return not_stored(s, req, why);
  return outcome_unknown(s, req, id, why);
}

response refused(const services& s, const request& req, const std::string& id, std::error_code ec) {
  std::string why;
  if (ec == errc::queue_full) why = "the queue is full";
  else if (ec == errc::shutting_down) why = "the server is shutting down (retry on another instance)";
  else why = "the queue is unavailable: " + ec.message();
  if (s.queue.known_not_stored(ec)) return not_stored(s, req, why);
  return outcome_unknown(s, req, id, why);
}

// Publishes and waits for durability until `deadline`. `on_done` runs when
// the queue settles the message (from any thread), even after the deadline.
asio::awaitable<response> publish(const services& s, const request& req, message m, clock::time_point deadline,
                                  std::function<void()> on_done) {
  const std::string id = m.id;
  auto start = [&q = s.queue, m = std::move(m), on_done = std::move(on_done)](auto complete) mutable {
    q.publish(std::move(m), [on_done = std::move(on_done), complete = std::move(complete)](std::error_code ec) {
      if (on_done) on_done();
      complete(ec);
    });
  };
  const auto ec = co_await complete_before<std::error_code>(deadline, std::move(start));
  if (!ec) co_return timed_out(s, req, id);
  if (!*ec) co_return accepted(req, id);
  co_return refused(s, req, id, *ec);
}

// The message stored under `id`, or nothing when there is none or the store
// did not answer before `deadline` (the post then goes ahead unchecked).
asio::awaitable<std::optional<message>> find_stored(services& s, std::shared_ptr<keyed_posts> k, std::string id,
                                                    clock::time_point deadline) {
  if (k->lookups.fetch_add(1) >= keyed_posts::max_lookups) {
    --k->lookups;
    co_return std::nullopt;
  }
  auto lookup = [&s, k, id](auto complete) {
    asio::post(s.blocking, [&s, k, id, complete = std::move(complete)] {
      auto found = s.db.find(id);
      --k->lookups;
      complete(std::move(found));
    });
  };
  auto found = co_await complete_before<result<std::optional<message>>>(deadline, std::move(lookup));
  if (!found || !*found) {
    spdlog::debug("post: no store lookup for {}: {}", id, found ? found->err().message : "timed out");
    co_return std::nullopt;
  }
  co_return std::move(**found);
}

// A post with an Idempotency-Key: refused when the key's first request had
// other content, answered from the store when it is stored already.
asio::awaitable<response> publish_keyed(services& s, std::shared_ptr<keyed_posts> k, const request& req, message m,
                                        clock::time_point deadline) {
  const auto held = k->in_flight.acquire(m.id, m.content);
  if (held == inflight_keys::outcome::conflict) co_return key_conflict(req);
  std::function<void()> release;
  if (held == inflight_keys::outcome::registered) release = [k, id = m.id] { k->in_flight.release(id); };

  const auto lookup_deadline = clock::now() + s.opts.publish_timeout / 2;
  auto stored = co_await find_stored(s, k, m.id, lookup_deadline);
  if (stored) {
    if (release) release();
    if (stored->user_id != m.user_id || stored->content != m.content) co_return key_conflict(req);
    co_return accepted(req, m.id);
  }
  co_return co_await publish(s, req, std::move(m), deadline, std::move(release));
}

}  // namespace

handler post_message_handler(services& s) {
  auto keyed = std::make_shared<keyed_posts>();
  return [&s, keyed](request_context& ctx) -> asio::awaitable<response> {
    const auto& req = ctx.req;
    if (auto bad = check_headers(req)) co_return error_response(req, bad->code, bad->message);
    std::string key_problem;
    const auto key = idempotency_key(req, key_problem);
    if (!key_problem.empty()) co_return error_response(req, status::bad_request, key_problem);
    auto parsed = parse_post_request(req.body(), s.opts.limits);
    if (!parsed) co_return error_response(req, status::bad_request, parsed.err().message);

    message m;
    m.id = key ? message_id_for_key(parsed->user_id, *key) : random_message_id();
    m.user_id = std::move(parsed->user_id);
    m.content = std::move(parsed->content);
    m.created_at = now_utc();
    const auto deadline = clock::now() + s.opts.publish_timeout;
    if (key) co_return co_await publish_keyed(s, keyed, req, std::move(m), deadline);
    co_return co_await publish(s, req, std::move(m), deadline, nullptr);
  };
}

}  // namespace feed::http
