#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <variant>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "base/log.h"
#include "http/handlers/handlers.h"
#include "http/handlers/loop_waits.h"
#include "http/response.h"
#include "model/accepted_message.h"
#include "model/inflight_keys.h"

namespace feed::http {
namespace {

using clock = asio::steady_timer::clock_type;

// What the handler keeps between requests, for posts with an Idempotency-Key.
// Shared with queue callbacks, which may outlive a request.
struct keyed_posts {
  explicit keyed_posts(inflight_keys& keys) : in_flight(keys) {}
  inflight_keys& in_flight;
  // Store lookups waiting on the blocking pool; past a bound (a store that
  // hangs) posts skip the lookup rather than queue behind it.
  std::atomic<int> lookups{0};
  static constexpr int max_lookups = 32;
};

// One inbox per event loop, made by the loop's first request. Found
// without a lock once made (every post asks): the first 64 loops, which
// --threads allows at most, have a slot each.
class inboxes {
 public:
  loop_inbox& of(std::size_t loop, const asio::io_context::executor_type& ex) {
    if (loop < fast_.size())
      if (auto* made = fast_[loop].load(std::memory_order_acquire)) return *made;
    std::lock_guard lock(mu_);
    if (by_loop_.size() <= loop) by_loop_.resize(loop + 1);
    if (!by_loop_[loop]) by_loop_[loop] = std::make_shared<loop_inbox>(ex);
    if (loop < fast_.size()) fast_[loop].store(by_loop_[loop].get(), std::memory_order_release);
    return *by_loop_[loop];
  }

 private:
  std::array<std::atomic<loop_inbox*>, 64> fast_{};
  std::mutex mu_;
  std::vector<std::shared_ptr<loop_inbox>> by_loop_;  // resized: the inboxes themselves never move
};

// The parts of the request that decide what is posted.
post_input input_of(const request& req) {
  post_input in;
  in.body = req.body();
  if (const auto ct = req.find(beast::http::field::content_type); ct != req.end()) in.content_type = ct->value();
  in.content_encoded = req.find(beast::http::field::content_encoding) != req.end();
  const auto [first, last] = req.equal_range("Idempotency-Key");
  for (auto it = first; it != last; ++it) in.idempotency_keys.push_back(it->value());
  return in;
}

// The answer to every accepted post, so the hottest response of the
// service: the body is written directly (the id is a UUID, nothing to
// escape) rather than built as a boost::json::object and serialized, which
// cost five heap allocations per post. Same bytes as json_response gives.
response accepted(const request& req, std::string_view id) {
  static constexpr std::string_view head = R"({"id":")", tail = "\",\"status\":\"accepted\"}\n";
  std::string body;
  body.reserve(head.size() + id.size() + tail.size());
  body.append(head).append(id).append(tail);
  return json_body_response(req, status::accepted, std::move(body));
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
// retry safely (with the same Idempotency-Key) or look for it. Without a
// key a retry is a new message, so the client is told to look first.
response outcome_unknown(const services& s, const request& req, std::string_view id, std::string_view why) {
  const std::string_view advice =
      req.find("Idempotency-Key") != req.end()
          ? "To be safe, retry later with the same Idempotency-Key (it is then stored once), or look for this id "
            "in the feed before posting again"
          : "Look for this id in the feed before posting again: this post had no Idempotency-Key, so a retry is a "
            "new message (send one to make retries safe)";
  const auto text = fmt::format("{}; the outcome is unknown: message {} may still be stored. {}", why, id, advice);
  return unavailable(s, json_response(req, status::service_unavailable,
                                      boost::json::object{{"error", text}, {"id", id}}));
}

response not_stored(const services& s, const request& req, std::string_view why) {
  return unavailable(s, error_response(req, status::service_unavailable,
                                       fmt::format("the message was not stored: {}; retry later", why)));
}

// How much is known of a post's message apart from this request's copy.
// An id without an Idempotency-Key is fresh: no other request has it. A
// keyed post's message may have been stored by an identical request before
// this one took the key; only the store's answer that it has none, given
// while this one held the key, rules that out (later twins share the key's
// entry and record their success there). With no such answer (the lookup
// timed out or was skipped), a copy withdrawn or refused here says nothing
// of the message, so the answer is "unknown", never "not stored".
enum class message_absence { known, unknown };

response not_stored_unless_unknown(const services& s, const request& req, std::string_view id,
                                   std::string_view why, message_absence absence) {
  return absence == message_absence::known ? not_stored(s, req, why) : outcome_unknown(s, req, id, why);
}

// A post whose wait ran out: withdrawn from the queue it is not stored, else
// its outcome is unknown. Posts with one Idempotency-Key and content share
// the id, so for a keyed post (`keys` set) withdrawing also takes back the
// identical posts still waiting, and one of them may have been stored
// already: the key's entry, held across the withdrawal, tells.
response timed_out(const services& s, const request& req, std::string_view id, inflight_keys* keys,
                   message_absence absence) {
  const auto why = fmt::format("the queue did not confirm it within {} ms", s.opts.publish_timeout.count());
  const std::string key_id(id);
  if (!keys) {
    if (s.queue.withdraw(key_id)) return not_stored(s, req, why);
    return outcome_unknown(s, req, id, why);
  }
  if (!keys->hold(key_id)) return outcome_unknown(s, req, id, why);  // unguarded: no record of its twins
  const bool withdrawn = s.queue.withdraw(key_id);
  const bool stored = keys->stored(key_id);
  keys->release(key_id);
  if (stored) return accepted(req, id);
  if (withdrawn) return not_stored_unless_unknown(s, req, id, why, absence);
  return outcome_unknown(s, req, id, why);
}

response refused(const services& s, const request& req, std::string_view id, std::error_code ec,
                 message_absence absence) {
  std::string why;
  if (ec == errc::queue_full) why = "the queue is full";
  else if (ec == errc::shutting_down) why = "the server is shutting down (retry on another instance)";
  // The in-process queue times a post out only by withdrawing it with an
  // identical one (same Idempotency-Key) whose wait ran out; Kafka's
  // producer times out records it could not deliver in time.
  else if (ec == errc::timeout && s.queue.known_not_stored(ec))
    why = "it was withdrawn with an identical request (same Idempotency-Key) that timed out";
  else if (ec == errc::timeout)
    why = fmt::format("the queue did not confirm it within {} ms", s.opts.publish_timeout.count());
  else if (ec == errc::not_sent) why = "the queue could not send it to its broker in time";
  else why = "the queue is unavailable: " + ec.message();
  if (s.queue.known_not_stored(ec)) return not_stored_unless_unknown(s, req, id, why, absence);
  return outcome_unknown(s, req, id, why);
}

using settled = std::function<void(std::error_code)>;

// Enqueues `m` and waits for its durability until `deadline`; the
// awaitable's value goes to answer_settled. `on_done` runs when the queue
// settles the message (from any thread), even after the deadline. Not a
// coroutine: its caller's frame is the only one a post waits in.
asio::awaitable<std::optional<std::error_code>> enqueue_and_wait(const services& s, loop_inbox& inbox, message m,
                                                                 clock::time_point deadline, settled on_done) {
  auto start = [&q = s.queue, m = std::move(m), on_done = std::move(on_done)](auto complete) mutable {
    q.enqueue(std::move(m), [on_done = std::move(on_done), complete = std::move(complete)](std::error_code ec) {
      if (on_done) on_done(ec);
      complete(ec);
    });
  };
  return complete_before<std::error_code>(inbox, deadline, std::move(start));
}

// The answer to a post enqueued under `id`, by how its wait ended.
// `keys` is set for a post with an Idempotency-Key.
response answer_settled(const services& s, const request& req, std::string_view id,
                        const std::optional<std::error_code>& ec, inflight_keys* keys,
                        message_absence absence = message_absence::known) {
  if (!ec) return timed_out(s, req, id, keys, absence);
  if (!*ec) return accepted(req, id);
  if (*ec == errc::key_conflict) return key_conflict(req);
  return refused(s, req, id, *ec, absence);
}

// The message's id, kept while the queue holds the message. A UUID fits
// the inline buffer: no heap copy per post.
using id_copy = boost::container::small_vector<char, 36>;
std::string_view view(const id_copy& id) { return {id.data(), id.size()}; }

// What the store said of an id: `answered` when it said, `found` what.
struct store_answer {
  bool answered = false;
  std::optional<message> found;
};

// The message stored under `id`; unanswered when the store did not answer
// before `deadline` or too many lookups are under way (the post then goes
// ahead unchecked).
asio::awaitable<store_answer> find_stored(services& s, loop_inbox& inbox, std::shared_ptr<keyed_posts> k,
                                          std::string id, clock::time_point deadline) {
  if (k->lookups.fetch_add(1) >= keyed_posts::max_lookups) {
    --k->lookups;
    co_return store_answer{};
  }
  auto lookup = [&s, k, id](auto complete) {
    asio::post(s.blocking, [&s, k, id, complete = std::move(complete)] {
      auto found = s.db.find(id);
      --k->lookups;
      complete(std::move(found));
    });
  };
  auto found = co_await complete_before<result<std::optional<message>>>(inbox, deadline, std::move(lookup));
  if (!found || !*found) {
    spdlog::debug("post: no store lookup for {}: {}", id, found ? found->err().message : "timed out");
    co_return store_answer{};
  }
  co_return store_answer{true, std::move(**found)};
}

// This post took nothing, but the key's message may be stored already with
// this very content (the store was not asked): its outcome is unknown.
response key_busy(const services& s, const request& req, std::string_view id) {
  return outcome_unknown(s, req, id, "a request with this Idempotency-Key and other content is still in flight");
}

// Takes the key for this content. While a post with other content holds it,
// that post's outcome decides this one's (stored or accepted: 422; not
// stored: the key is free), so this waits for it to settle, looking again
// every few milliseconds: such races are rare, and a timer costs nothing
// meanwhile. Nullopt when the other post is still in flight at `deadline`.
asio::awaitable<std::optional<inflight_keys::outcome>> take_key(keyed_posts& k, const message& m,
                                                                  clock::time_point deadline) {
  constexpr auto look_again = std::chrono::milliseconds(5);
  auto held = k.in_flight.acquire(m.id, m.content);
  while (held == inflight_keys::outcome::conflict) {
    if (clock::now() + look_again >= deadline) co_return std::nullopt;
    asio::steady_timer pause(co_await asio::this_coro::executor, look_again);
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    held = k.in_flight.acquire(m.id, m.content);
  }
  co_return held;
}

// A post with an Idempotency-Key: refused when the key's first request had
// other content, answered from the store when it is stored already.
asio::awaitable<response> enqueue_keyed(services& s, loop_inbox& inbox, std::shared_ptr<keyed_posts> k,
                                        const request& req, message m, clock::time_point deadline) {
  const auto held = co_await take_key(*k, m, deadline);
  if (!held) co_return key_busy(s, req, m.id);
  // Accepted by this instance and not stored yet: the queue has it (with
  // Kafka the worker's backlog may hold it for long), so the store cannot
  // tell yet, and the key's content is known here.
  if (*held == inflight_keys::outcome::taken) co_return key_conflict(req);
  if (*held == inflight_keys::outcome::accepted) co_return accepted(req, m.id);
  const bool registered = *held == inflight_keys::outcome::registered;

  const auto lookup_deadline = std::min(deadline, clock::now() + s.opts.publish_timeout / 2);
  auto looked = co_await find_stored(s, inbox, k, m.id, lookup_deadline);
  // Other content may still land under this key (kept "pending"): only the
  // store can end the wait, when it has the message. Nothing was taken, so
  // nothing of this request's is stored.
  // Without the store's answer, this content may be the one stored already.
  if (*held == inflight_keys::outcome::pending) {
    constexpr std::string_view other = "a request with this Idempotency-Key and other content may still be stored";
    if (!looked.answered) co_return outcome_unknown(s, req, m.id, fmt::format("{}, and the store did not answer in time", other));
    if (!looked.found) co_return not_stored(s, req, fmt::format("{} (once it is, this content is refused with 422)", other));
    k->in_flight.seen_stored(m.id);
  }
  if (const auto& stored = looked.found) {
    // Stored already: nothing to remember, the store answers from now on.
    if (registered) {
      k->in_flight.seen_stored(m.id);
      k->in_flight.release(m.id);
    }
    if (stored->user_id != m.user_id || stored->content != m.content) co_return key_conflict(req);
    co_return accepted(req, m.id);
  }
  // Absence is known only from an answer given while this post held the
  // key's entry (an unguarded post holds none).
  auto absence = looked.answered && registered ? message_absence::known : message_absence::unknown;
  settled release;
  if (registered)
    release = [k, &q = s.queue, id = m.id, checked = looked.answered](std::error_code ec) {
      k->in_flight.release(id, {.durable = !ec, .checked = checked, .may_land = ec && !q.known_not_stored(ec)});
    };
  const id_copy id(m.id.begin(), m.id.end());
  const auto ec = co_await enqueue_and_wait(s, inbox, std::move(m), deadline, std::move(release));
  // Refused, this copy is not stored, but an identical post still holding
  // the key's entry (or one that left it kept) may store the message.
  if (ec && *ec && k->in_flight.contains(std::string(view(id)))) absence = message_absence::unknown;
  auto answer = answer_settled(s, req, view(id), ec, &k->in_flight, absence);
  // Unchecked, the key may hold other content already stored, and the
  // worker then keeps that and drops this one: a 202 from a broker would
  // promise a message that never comes. The client's retry with the key,
  // once the store answers, says which (202 or 422). A queue that settles
  // at storage has said 422 for that already.
  if (!looked.answered && !s.queue.settles_at_storage() && answer.result() == status::accepted)
    co_return outcome_unknown(s, req, view(id),
                              "the store did not say in time whether this Idempotency-Key already holds other "
                              "content (the queue has the message; it is stored unless the key does)");
  co_return answer;
}

}  // namespace

handler post_message_handler(services& s) {
  auto keyed = std::make_shared<keyed_posts>(s.keys);
  auto loops = std::make_shared<inboxes>();
  return [&s, keyed, loops](request_context& ctx) -> asio::awaitable<response> {
    const auto& req = ctx.req;
    auto decision = build_accepted_message(input_of(req), s.opts.limits, now_utc());
    if (const auto* no = std::get_if<post_refusal>(&decision))
      co_return error_response(req, static_cast<status>(no->status), no->message);
    auto& post = std::get<accepted_post>(decision);
    const auto deadline = clock::now() + s.opts.publish_timeout;
    const auto ex = co_await asio::this_coro::executor;
    const auto* loop_ex = ex.target<asio::io_context::executor_type>();
    if (!loop_ex) throw std::logic_error("post: the handler must run on an io_context");
    auto& inbox = loops->of(ctx.loop, *loop_ex);
    if (post.keyed) co_return co_await enqueue_keyed(s, inbox, keyed, req, std::move(post.msg), deadline);
    const id_copy id(post.msg.id.begin(), post.msg.id.end());
    const auto ec = co_await enqueue_and_wait(s, inbox, std::move(post.msg), deadline, nullptr);
    co_return answer_settled(s, req, view(id), ec, nullptr);
  };
}

}  // namespace feed::http
